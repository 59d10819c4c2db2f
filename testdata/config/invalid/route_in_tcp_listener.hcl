listener "echo" {
  protocol = "tcp"
  listen   = "127.0.0.1:8081"
  upstream = "echo"

  route "home" {
    respond {}
  }
}

upstream "echo" {
  backend "127.0.0.1:9101" {}
}
