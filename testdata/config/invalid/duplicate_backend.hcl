upstream "api" {
  backend "127.0.0.1:9001" {}
  backend "127.0.0.1:9001" { weight = 2 }
  backend "localhost:9002" {}
  backend "127.0.0.1:9002" {}
}

upstream "other" {
  # The same address in another pool is fine.
  backend "127.0.0.1:9001" {}
}
