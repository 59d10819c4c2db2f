listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "nowhere" {
    path_prefix = "/"
  }
}
