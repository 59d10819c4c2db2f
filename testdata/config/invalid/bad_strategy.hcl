listener "web" {
  protocol = "tcp"
  listen   = "127.0.0.1:8080"
  upstream = "api"
}

upstream "api" {
  strategy = "fastest"
  backend "127.0.0.1:9001" {}
}
