listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "both" {
    path_prefix      = "/api"
    upstream         = "api"
    strip_prefix     = true
    timeout          = "5s"
    retries          = 2
    request_headers  = { "X-Env" = "prod" }
    response_headers = { "X-Served-By" = "switchyard" }
    respond {
      status = 503
    }
  }
}

upstream "api" {
  backend "127.0.0.1:9001" {}
}
