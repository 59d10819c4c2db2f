# Every attribute set to a value other than its default; the unit tests check
# each one arrives in Config.
shutdown_timeout = "30s"

admin {
  listen = "127.0.0.1:9090"
}

log {
  level  = "debug"
  format = "json"
  access = true
}

listener "web" {
  protocol        = "http"
  listen          = "127.0.0.1:8080"
  max_connections = 500
  idle_timeout    = "90s"

  route "exact" {
    host     = "WWW.Example.com"
    path     = "/exact"
    methods  = ["GET", "HEAD"]
    upstream = "api"
  }
  route "api" {
    host             = "*.example.com"
    path_prefix      = "/api/"
    methods          = ["POST"]
    headers          = { "x-canary" = "1", "X-Tenant" = "blue" }
    upstream         = "api"
    strip_prefix     = true
    timeout          = "5s"
    retries          = 0
    request_headers  = { "X-Env" = "prod" }
    response_headers = { "X-Served-By" = "switchyard" }
  }
  route "teapot" {
    path_prefix      = "/tea"
    response_headers = { "X-Route" = "teapot" }
    respond {
      status  = 418
      body    = "short and stout\n"
      headers = { "content-type" = "text/plain" }
    }
  }
}

listener "sticky-tcp" {
  protocol = "tcp"
  listen   = "127.0.0.1:8081"
  upstream = "sticky"
}

upstream "api" {
  strategy        = "least_latency"
  connect_timeout = "750ms"

  backend "127.0.0.1:9001" { weight = 5 }
  backend "localhost:9002" {}
  backend "api-3.internal:9003" {}

  health_check {
    interval            = "3s"
    timeout             = "500ms"
    path                = "/ready"
    healthy_threshold   = 3
    unhealthy_threshold = 4
  }

  circuit_breaker {
    consecutive_failures = 7
    failure_ratio        = 0.25
    min_requests         = 40
    open_timeout         = "30s"
    half_open_requests   = 3
  }
}

upstream "sticky" {
  strategy = "consistent_hash"
  hash_on  = "client_ip"
  backend "127.0.0.1:9101" {}
  backend "[::1]:9102" {}

  health_check {}
}

upstream "by-user" {
  strategy = "consistent_hash"
  hash_on  = "header:X-User"
  backend "127.0.0.1:9001" {}
}

builtin "slow" {
  handler    = "http"
  listen     = "127.0.0.1:9001"
  status     = 503
  body       = "busy\n"
  latency    = "250ms"
  error_rate = 0.1
  healthy    = false
}

builtin "rooms" {
  handler              = "chat"
  listen               = "127.0.0.1:9201"
  max_rooms            = 5
  max_clients_per_room = 2
}

builtin "echo" {
  handler = "echo"
  listen  = "127.0.0.1:9101"
}
