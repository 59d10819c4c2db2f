listener "web" {
  protocol        = "http"
  listen          = "127.0.0.1:8080"
  max_connections = 0

  route "api" {
    upstream = "api"
    retries  = -1
  }
}

upstream "api" {
  backend "127.0.0.1:9001" {}
  health_check {
    healthy_threshold   = 0
    unhealthy_threshold = 0
  }
  circuit_breaker {
    consecutive_failures = 0
    min_requests         = 0
    half_open_requests   = 0
  }
}

builtin "chat" {
  handler              = "chat"
  listen               = "127.0.0.1:9201"
  max_rooms            = 0
  max_clients_per_room = -5
}
