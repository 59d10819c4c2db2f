locals {
  a = local.b
  b = local.a
  c = local.missing
  d = env()
  e = nosuchfunc("x")
}

listener "web" {
  protocol = "http"
  listen   = local.a
}
