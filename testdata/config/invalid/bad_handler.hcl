builtin "ws" {
  handler = "websocket"
  listen  = "127.0.0.1:9001"
}
