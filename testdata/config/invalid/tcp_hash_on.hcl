listener "tcp-by-header" {
  protocol = "tcp"
  listen   = "127.0.0.1:8081"
  upstream = "by-header"
}

listener "tcp-by-path" {
  protocol = "tcp"
  listen   = "127.0.0.1:8082"
  upstream = "by-path"
}

upstream "by-header" {
  strategy = "consistent_hash"
  hash_on  = "header:X-User"
  backend "127.0.0.1:9001" {}
}

upstream "by-path" {
  strategy = "consistent_hash"
  hash_on  = "path"
  backend "127.0.0.1:9002" {}
}
