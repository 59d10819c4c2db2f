admin {
  listen = "127.0.0.1:9090"
}

admin {
  listen = "127.0.0.1:9091"
}

log {
  level = "debug"
}

log {
  level = "info"
}

upstream "api" {
  backend "127.0.0.1:9001" {}
  health_check {}
  health_check {}
  circuit_breaker {}
  circuit_breaker {}
}

listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"
  route "home" {
    respond {}
    respond {}
  }
}
