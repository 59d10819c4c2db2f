listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  rule "home" {
    respond {}
  }
}

server "extra" {
  listen = "127.0.0.1:8081"
}

upstream "api" {
  backend "127.0.0.1:9001" {
    tls {}
  }
}
