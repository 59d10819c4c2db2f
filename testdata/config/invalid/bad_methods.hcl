listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "lower" {
    methods = ["get", "POST"]
    respond {}
  }
  route "spaces" {
    methods = ["GET POST"]
    respond {}
  }
  route "none" {
    methods = []
    respond {}
  }
}
