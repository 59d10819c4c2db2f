admin {
  listen = "127.0.0.1:9090"
}

listener "web" {
  protocol = "http"
  listen   = "localhost:9090"
}

listener "all-interfaces" {
  protocol = "http"
  listen   = ":8080"
}

builtin "hello" {
  handler = "http"
  listen  = "127.0.0.1:8080"
}

builtin "hello-again" {
  handler = "http"
  listen  = "127.0.0.1:9090"
}

# Port 0 picks a free port each time, so these never conflict.
builtin "any-1" {
  handler = "echo"
  listen  = "127.0.0.1:0"
}
builtin "any-2" {
  handler = "echo"
  listen  = "127.0.0.1:0"
}
