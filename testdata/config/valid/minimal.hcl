# The smallest useful file: one http listener answering by itself.
listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"

  route "hello" {
    respond {
      body = "hello\n"
    }
  }
}
