listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "api" {
    path        = "/api"
    path_prefix = "/api/"
    respond {}
  }
}
