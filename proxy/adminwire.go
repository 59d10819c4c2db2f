package proxy

import (
	"net/http"

	"switchyard/proxy/admin"
)

// adminRuntime adapts the Runtime to the admin endpoint.
type adminRuntime struct{ r *Runtime }

func (a adminRuntime) Status() any { return a.r.Status() }

func (a adminRuntime) Reload() admin.ReloadOutcome {
	res := a.r.Reload("admin")
	return admin.ReloadOutcome{OK: res.OK, Generation: res.Generation, Changed: res.Changed, Error: res.Error, Diagnostics: res.Diagnostics}
}

// adminHandler serves the admin endpoint at listen. Its host is accepted
// as a Host value besides localhost names and the connection's own
// address, so a DNS name in admin.listen works (DNS-rebinding guard).
func (r *Runtime) adminHandler(listen string) http.Handler {
	return admin.NewHandler(adminRuntime{r}, r.metrics.Registry, admin.AllowHost(listen))
}
