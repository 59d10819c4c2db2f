listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "api" {
    path         = "/api"
    upstream     = "api"
    strip_prefix = true
  }
  # strip_prefix = false is harmless without a prefix.
  route "other" {
    upstream     = "api"
    strip_prefix = false
  }
}

upstream "api" {
  backend "127.0.0.1:9001" {}
}
