listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "continue" {
    path = "/continue"
    respond {
      status = 100
    }
  }
  route "huge" {
    path = "/huge"
    respond {
      status = 600
    }
  }
  route "empty" {
    respond {
      status = 204
      body   = "nothing here"
    }
  }
}

builtin "hello" {
  handler = "http"
  listen  = "127.0.0.1:9001"
  status  = 99
}
