listener "web" {
  protocol             = "http"
  listen               = "127.0.0.1:8080"
  trusted_proxies      = ["10.0.0.0/8", "10.0.0.300/8", "not-an-ip"]
  request_body_timeout = "soon"

  route "home" {
    respond {}
  }
}

listener "echo" {
  protocol               = "tcp"
  listen                 = "127.0.0.1:8081"
  upstream               = "echo"
  underscores_in_headers = true
}

upstream "echo" {
  backend "127.0.0.1:9101" {}
}
