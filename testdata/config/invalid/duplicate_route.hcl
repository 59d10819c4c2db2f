listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "home" {
    path = "/"
    respond {}
  }
  route "home" {
    path = "/index.html"
    respond {}
  }
}

listener "other" {
  protocol = "http"
  listen   = "127.0.0.1:8081"

  # The same route name in another listener is fine.
  route "home" {
    respond {}
  }
}
