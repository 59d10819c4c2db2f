# Locals may refer to each other (in any order) and to env(); every
# attribute accepts expressions.
locals {
  base_port = 8000
  host      = "127.0.0.1"
  web       = "${local.host}:${local.base_port + 80}"
}

locals {
  env_raw   = env("SWITCHYARD_TEST_ENV")
  env_name  = local.env_raw != "" ? local.env_raw : "dev"
  is_prod   = local.env_name == "prod"
  tag       = upper(format("%s-%d", local.env_name, local.base_port))
  backends  = [for i in [1, 2, 3] : "${local.host}:${9000 + i}"]
  first     = coalesce(null, local.backends[0])
  env_label = lower(join("/", ["Env", local.env_name]))
}

listener "web" {
  protocol        = "http"
  listen          = local.web
  max_connections = local.is_prod ? 10000 : 100
  idle_timeout    = local.is_prod ? "60s" : null # null = default

  route "api" {
    path_prefix      = "/api/"
    upstream         = "api"
    request_headers  = { "X-Env" = local.env_label, "X-Tag" = local.tag }
    response_headers = { "X-Unset" = env("SWITCHYARD_TEST_UNSET") }
  }
}

upstream "api" {
  backend "127.0.0.1:9001" { weight = local.is_prod ? 1 : 2 }
  backend "127.0.0.1:9002" {}
}

builtin "hello" {
  handler = "http"
  listen  = local.first
  body    = trimspace("  ${local.env_name}  ")
}
