builtin "hello" {
  status = 200
}
