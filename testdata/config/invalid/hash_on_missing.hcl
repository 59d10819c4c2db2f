upstream "sticky" {
  strategy = "consistent_hash"
  backend "127.0.0.1:9001" {}
}
