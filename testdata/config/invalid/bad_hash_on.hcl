upstream "by-cookie" {
  strategy = "consistent_hash"
  hash_on  = "cookie"
  backend "127.0.0.1:9001" {}
}

upstream "by-nothing" {
  strategy = "consistent_hash"
  hash_on  = "header:"
  backend "127.0.0.1:9002" {}
}

upstream "by-bad-header" {
  strategy = "consistent_hash"
  hash_on  = "header:X User"
  backend "127.0.0.1:9003" {}
}
