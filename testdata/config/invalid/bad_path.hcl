listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "relative" {
    path = "api"
    respond {}
  }
  route "relative-prefix" {
    path_prefix = "api/"
    respond {}
  }
  route "query" {
    path = "/search?q=x"
    respond {}
  }
  route "space" {
    path_prefix = "/my files"
    respond {}
  }
}

upstream "api" {
  backend "127.0.0.1:9001" {}
  health_check {
    path = "healthz"
  }
}
