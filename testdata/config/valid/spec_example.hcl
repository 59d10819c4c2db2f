shutdown_timeout = "15s"          # drain budget on SIGTERM / for removed listeners

admin {
  listen = "127.0.0.1:9090"       # GET / (dashboard), /status, /metrics, /healthz; POST /reload
}

log {
  level  = "info"                 # trace|debug|info|warn|error
  format = "text"                 # text|json
  access = true                   # one line per HTTP request / TCP session
}

listener "web" {
  protocol        = "http"        # "http" | "tcp"   (required)
  listen          = "127.0.0.1:8080"                  # (required)
  max_connections = 10000         # at the limit, accepting pauses (kernel backlog = backpressure)
  idle_timeout    = "60s"

  # http listeners: routes, first match in file order wins; no match -> 404
  route "chat" {
    path_prefix = "/chat"
    upstream    = "chat"          # WebSocket upgrades are proxied transparently
  }
  route "api" {
    host         = "api.localhost"        # exact, or "*.example.com" (exactly one label); port ignored
    path_prefix  = "/api/"                 # or `path = "/exact"`; never both on one route
    methods      = ["GET", "POST"]
    headers      = { "X-Canary" = "1" }   # all must match exactly
    upstream     = "api"
    strip_prefix = true                    # remove path_prefix before forwarding
    timeout      = "30s"                   # whole upstream exchange
    retries      = 1                       # extra tries on other backends, see §3
    request_headers  = { "X-Env" = env("DEPLOY_ENV") }
    response_headers = { "X-Served-By" = "switchyard" }
  }
  route "fallback" {
    respond {                              # static answer instead of an upstream
      status = 404
      body   = "no such page\n"
    }
  }
}

listener "echo" {
  protocol = "tcp"
  listen   = "127.0.0.1:8081"
  upstream = "echo"               # tcp listeners forward every connection to one pool
}

upstream "api" {
  strategy        = "round_robin" # round_robin | least_conn | random | p2c | consistent_hash | least_latency
  # hash_on       = "client_ip"   # consistent_hash only (and required there): client_ip | header:NAME | path
  connect_timeout = "2s"

  backend "127.0.0.1:9001" { weight = 3 }  # label = address; weight defaults to 1
  backend "127.0.0.1:9002" {}

  health_check {                  # active checks; absent = passive only
    interval            = "2s"
    timeout             = "1s"
    path                = "/healthz"   # http GET expecting 2xx; omit for a TCP connect check
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  circuit_breaker {               # one breaker per backend
    consecutive_failures = 5      # trips after N failures in a row
    failure_ratio        = 0.5    # ...or this ratio once min_requests are seen
    min_requests         = 20
    open_timeout         = "10s"  # then half-open
    half_open_requests   = 1
  }
}

builtin "hello-1" {               # a built-in server on its own address
  handler    = "http"             # http | echo | chat
  listen     = "127.0.0.1:9001"
  # http handler options (for demos and fault injection):
  status     = 200
  body       = ""                 # empty = JSON echo of the request (see §4)
  latency    = "0s"               # added to every response
  error_rate = 0.0                # fraction answered 503
  healthy    = true               # false: GET /healthz answers 503
}
builtin "hello-2" {
  handler = "http"
  listen  = "127.0.0.1:9002"
}

upstream "chat" {
  backend "127.0.0.1:9201" {}
}
builtin "chat" {
  handler              = "chat"
  listen               = "127.0.0.1:9201"
  max_rooms            = 100
  max_clients_per_room = 50
}

upstream "echo" {
  strategy = "least_conn"
  backend "127.0.0.1:9101" {}
  backend "127.0.0.1:9102" {}
}
builtin "echo-1" {
  handler = "echo"
  listen  = "127.0.0.1:9101"
}
builtin "echo-2" {
  handler = "echo"
  listen  = "127.0.0.1:9102"
}
