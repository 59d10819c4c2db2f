shutdown_timout = "10s"

listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"
  max_conns = 10

  route "home" {
    prefix = "/"
    respond {}
  }
}
