listener "echo" {
  protocol = "tcp"
  listen   = "127.0.0.1:8081"
}
