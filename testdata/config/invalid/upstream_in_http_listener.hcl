listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"
  upstream = "api"
}

upstream "api" {
  backend "127.0.0.1:9001" {}
}
