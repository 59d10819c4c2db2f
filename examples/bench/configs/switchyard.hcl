# switchyard under benchmark: rendered by run.sh (at-sign placeholders are filled in).
# One HTTP listener balancing everything over the two nginx backends, and two
# TCP listeners for the L4 tests (ping-pong to echo servers, bulk to a sink).
# The engine line is empty (the default engine) for the "switchyard" column
# and `engine = "std"` (net/http) for "switchyard-std".
shutdown_timeout = "2s"

log {
  level  = "warn"
  format = "text"
  access = false
}

listener "web" {
  protocol        = "http"
  listen          = "@HTTP_ADDR@"
  max_connections = @MAX_CONNS@
  idle_timeout    = "60s"
  @ENGINE_LINE@

  route "all" {
    path_prefix = "/"
    upstream    = "web"
    retries     = 1
  }
}

listener "l4-echo" {
  protocol        = "tcp"
  listen          = "@ECHO_ADDR@"
  max_connections = @MAX_CONNS@
  upstream        = "echo"
}

listener "l4-sink" {
  protocol = "tcp"
  listen   = "@SINK_ADDR@"
  upstream = "sink"
}

upstream "web" {
  strategy = "round_robin"
  backend "@BACKEND1@" {}
  backend "@BACKEND2@" {}
}

upstream "echo" {
  strategy = "round_robin"
  backend "@ECHO1@" {}
  backend "@ECHO2@" {}
}

upstream "sink" {
  backend "@SINK1@" {}
}
