admin "main" {
  listen = "127.0.0.1:9090"
}

listener {
  protocol = "http"
  listen   = "127.0.0.1:8080"
}

upstream "api" "extra" {
  backend "127.0.0.1:9001" {}
}
