listener "web" {
  protocol        = "http"
  listen          = "127.0.0.1:8080"
  max_connections = "lots"

  route "api" {
    methods      = "GET"
    headers      = ["X-Canary"]
    upstream     = "api"
    path_prefix  = "/api"
    strip_prefix = "maybe"
  }
  route "nulls" {
    methods  = ["GET", null]
    headers  = { "X-Canary" = null }
    upstream = "api"
  }
}

upstream "api" {
  backend "127.0.0.1:9001" {
    weight = { value = 2 }
  }
}
