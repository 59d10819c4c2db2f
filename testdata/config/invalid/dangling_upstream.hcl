listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "api" {
    upstream = "ap1"
  }
}

listener "echo" {
  protocol = "tcp"
  listen   = "127.0.0.1:8081"
  upstream = "echo"
}

upstream "api" {
  backend "127.0.0.1:9001" {}
}
