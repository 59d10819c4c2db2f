upstream "api" {
  backend "127.0.0.1:9001" {}
}

upstream "api" {
  backend "127.0.0.1:9002" {}
}
