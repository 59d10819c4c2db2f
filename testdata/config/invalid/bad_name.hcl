listener "my web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"
  route "" {
    respond {}
  }
}

upstream "-api" {
  backend "127.0.0.1:9001" {}
}
