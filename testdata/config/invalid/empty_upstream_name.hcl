listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "api" {
    upstream = ""
  }
}

listener "tcp" {
  protocol = "tcp"
  listen   = "127.0.0.1:8081"
  upstream = ""
}
