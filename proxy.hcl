# switchyard demo configuration: runs with nothing else installed.
#
#   go run ./cmd/switchyard        # then, in another terminal:
#   curl -i 127.0.0.1:8080/        # balanced across hello-1..3
#   nc 127.0.0.1 8081              # echoed by echo-1 / echo-2
#   open http://127.0.0.1:9090/    # live dashboard (JSON at /status)
#
# Save this file and the running proxy reconfigures itself; a broken save is
# rejected with FILE:LINE,COL in the log and the old config keeps serving.

shutdown_timeout = "15s" # drain budget on SIGTERM and for removed listeners

locals {
  # Values used below; env("NAME") reads the environment ("" when unset).
  hello_health = "/healthz"
}

admin {
  listen = "127.0.0.1:9090" # GET / (dashboard), /status, /metrics, /healthz; POST /reload
}

log {
  level  = "info" # trace | debug | info | warn | error
  format = "text" # text | json
  access = false  # true: one log line per HTTP request / TCP session
}

# An HTTP listener: the first route that matches wins; no match answers 404.
listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "chat" {
    path_prefix = "/chat" # WebSocket upgrades pass straight through
    upstream    = "chat"
  }

  route "hello" {
    path_prefix      = "/"
    upstream         = "hello"
    retries          = 1 # a failed try moves to another backend
    timeout          = "10s"
    response_headers = { "X-Served-By" = "switchyard" }
  }
}

# A TCP listener forwards whole connections to one pool.
listener "echo" {
  protocol = "tcp"
  listen   = "127.0.0.1:8081"
  upstream = "echo"
}

# A pool of backends: a strategy, an active health check and one circuit
# breaker per backend. Backends are named by their address.
upstream "hello" {
  strategy = "round_robin" # round_robin | least_conn | random | p2c | consistent_hash | least_latency

  backend "127.0.0.1:9001" {}
  backend "127.0.0.1:9002" {}
  backend "127.0.0.1:9003" {}

  health_check {
    interval            = "1s"
    timeout             = "500ms"
    path                = local.hello_health # omit path for a TCP connect check
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  circuit_breaker {
    consecutive_failures = 5    # open after 5 failures in a row...
    failure_ratio        = 0.5  # ...or half of the last requests failing
    min_requests         = 20
    open_timeout         = "5s" # then let one probe through (half-open)
    half_open_requests   = 1
  }
}

upstream "chat" {
  backend "127.0.0.1:9201" {}

  health_check {
    interval = "2s"
    timeout  = "1s" # no path: a TCP connect check
  }
  circuit_breaker {
    consecutive_failures = 5
  }
}

upstream "echo" {
  strategy = "round_robin"
  backend "127.0.0.1:9101" {}
  backend "127.0.0.1:9102" {}

  health_check {
    interval = "2s"
    timeout  = "1s"
  }
  circuit_breaker {
    consecutive_failures = 3
    open_timeout         = "5s"
  }
}

# Built-in servers, so the demo needs nothing else. Try error_rate = 1.0 on
# one of them and watch its breaker open on the dashboard.
builtin "hello-1" {
  handler = "http" # http | echo | chat
  listen  = "127.0.0.1:9001"
  # status = 200, body = "" (JSON echo of the request), latency = "0s",
  # error_rate = 0.0 (fraction answered 503), healthy = true (/healthz)
}
builtin "hello-2" {
  handler = "http"
  listen  = "127.0.0.1:9002"
}
builtin "hello-3" {
  handler = "http"
  listen  = "127.0.0.1:9003"
}

builtin "chat" {
  handler              = "chat" # open http://127.0.0.1:8080/chat/lobby
  listen               = "127.0.0.1:9201"
  max_rooms            = 100
  max_clients_per_room = 50
}

builtin "echo-1" {
  handler = "echo"
  listen  = "127.0.0.1:9101"
}
builtin "echo-2" {
  handler = "echo"
  listen  = "127.0.0.1:9102"
}
