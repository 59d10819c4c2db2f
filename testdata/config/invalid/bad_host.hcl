listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "two-wildcards" {
    host = "*.*.example.com"
    respond {}
  }
  route "middle-wildcard" {
    host = "api.*.com"
    respond {}
  }
  route "bare-wildcard" {
    host = "*"
    respond {}
  }
  route "with-port" {
    host = "example.com:8080"
    respond {}
  }
  route "partial-wildcard" {
    host = "api-*.example.com"
    respond {}
  }
  route "empty-label" {
    host = "api..example.com"
    respond {}
  }
}
