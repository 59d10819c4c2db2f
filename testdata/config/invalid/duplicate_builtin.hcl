builtin "echo" {
  handler = "echo"
  listen  = "127.0.0.1:9101"
}

builtin "echo" {
  handler = "echo"
  listen  = "127.0.0.1:9102"
}
