upstream "empty" {
  strategy = "least_conn"
}
