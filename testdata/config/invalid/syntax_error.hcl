listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"
  route "home" {
    respond { status = 200 }
  
}
