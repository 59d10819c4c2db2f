upstream "api" {
  backend "127.0.0.1:9001" {}
  circuit_breaker {
    failure_ratio = 1.5
  }
}

upstream "other" {
  backend "127.0.0.1:9002" {}
  circuit_breaker {
    failure_ratio = -0.1
  }
}

builtin "flaky" {
  handler    = "http"
  listen     = "127.0.0.1:9001"
  error_rate = 2
}
