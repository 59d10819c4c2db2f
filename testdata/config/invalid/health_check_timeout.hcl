upstream "api" {
  backend "127.0.0.1:9001" {}
  health_check {
    interval = "1s"
    timeout  = "5s"
  }
}

upstream "defaults" {
  backend "127.0.0.1:9002" {}
  health_check {
    interval = "500ms"
  }
}
