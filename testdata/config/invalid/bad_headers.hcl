listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "api" {
    headers          = { "X Canary" = "1" }
    upstream         = "api"
    request_headers  = { "X-Env" = "prod\r\nX-Injected: 1" }
    response_headers = { "X-Served-By" = "a", "x-served-by" = "b" }
  }
}

upstream "api" {
  backend "127.0.0.1:9001" {}
}
