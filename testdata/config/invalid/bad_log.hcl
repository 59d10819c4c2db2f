log {
  level  = "verbose"
  format = "xml"
  access = "sometimes"
}
