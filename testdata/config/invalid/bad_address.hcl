admin {
  listen = "9090"
}

listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:99999"
  route "home" {
    respond {}
  }
}

listener "named" {
  protocol = "tcp"
  listen   = "proxy.example.com:8081"
  upstream = "pool"
}

upstream "pool" {
  backend "127.0.0.1:0" {}
  backend ":9001" {}
  backend "127.0.0.1:http" {}
  backend "bad_host!:80" {}
  backend "10.0.0.1" {}
}
