listener "web" {
  protocol = "https"
  listen   = "127.0.0.1:8443"
}
