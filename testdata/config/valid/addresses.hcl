# Address forms that must be accepted, and binds that do not collide.
admin {
  listen = "localhost:0" # any free port
}

listener "all-interfaces" {
  protocol = "tcp"
  listen   = ":8080"
  upstream = "pool"
}

listener "ipv6-loopback" {
  protocol = "tcp"
  listen   = "[::1]:8081"
  upstream = "pool"
}

listener "same-port-other-ip" {
  protocol = "tcp"
  listen   = "127.0.0.2:8081"
  upstream = "pool"
}

upstream "pool" {
  strategy = "p2c"
  backend "127.0.0.1:9101" {}
  backend "[::1]:9101" {}
  backend "backend.internal:9101" {}
  backend "localhost:9102" {}
}

builtin "echo-any-1" {
  handler = "echo"
  listen  = "127.0.0.1:0"
}

builtin "echo-any-2" {
  handler = "echo"
  listen  = "127.0.0.1:0"
}
