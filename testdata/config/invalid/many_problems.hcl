shutdown_timeout = "forever"

admin {
  listen = "127.0.0.1:8080"
}

log {
  level = "loud"
}

listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "api" {
    host        = "*.*.example.com"
    path        = "/api"
    path_prefix = "/api/"
    methods     = ["get"]
    upstream    = "apis"
  }
  route "api" {
    respond {}
  }
}

upstream "api" {
  strategy = "fastest"
  backend "127.0.0.1:9001" { weight = 0 }
  backend "127.0.0.1:9001" {}
}

builtin "hello" {
  handler    = "http"
  listen     = "127.0.0.1:9001"
  error_rate = 1.5
  max_rooms  = 3
}
