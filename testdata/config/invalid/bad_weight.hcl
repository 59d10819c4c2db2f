upstream "api" {
  backend "127.0.0.1:9001" { weight = 0 }
  backend "127.0.0.1:9002" { weight = 1.5 }
  backend "127.0.0.1:9003" { weight = -3 }
  backend "127.0.0.1:9004" { weight = 3 }
}
