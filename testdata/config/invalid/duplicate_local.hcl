locals {
  port = 8080
}

locals {
  host = "127.0.0.1"
  port = 8081
}

listener "web" {
  protocol = "http"
  listen   = "${local.host}:${local.port}"
}
