builtin "hello" {
  handler   = "http"
  listen    = "127.0.0.1:9001"
  max_rooms = 10
}

builtin "chat" {
  handler = "chat"
  listen  = "127.0.0.1:9201"
  status  = 200
  healthy = false
}

builtin "echo" {
  handler              = "echo"
  listen               = "127.0.0.1:9101"
  latency              = "10ms"
  max_clients_per_room = 5
}
