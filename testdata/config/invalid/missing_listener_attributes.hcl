listener "web" {
  route "home" {
    respond {}
  }
}
