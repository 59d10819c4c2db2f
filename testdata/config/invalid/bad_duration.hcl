shutdown_timeout = "15 seconds"

listener "web" {
  protocol     = "http"
  listen       = "127.0.0.1:8080"
  idle_timeout = "0s"

  route "api" {
    upstream = "api"
    timeout  = 30
  }
}

upstream "api" {
  connect_timeout = "-2s"
  backend "127.0.0.1:9001" {}
  circuit_breaker {
    open_timeout = "soon"
  }
}

builtin "slow" {
  handler = "http"
  listen  = "127.0.0.1:9001"
  latency = "-1ms"
}
