upstream "rr" {
  strategy = "round_robin"
  hash_on  = "client_ip"
  backend "127.0.0.1:9001" {}
}

upstream "default-strategy" {
  hash_on = "path"
  backend "127.0.0.1:9002" {}
}
