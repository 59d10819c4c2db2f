package config

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// handlerAttributes lists the attributes that only one handler understands.
var handlerAttributes = map[string][]string{
	"http": {"status", "body", "latency", "error_rate", "healthy"},
	"chat": {"max_rooms", "max_clients_per_room"},
}

var builtinSchema = blockSchema{
	attributes: []string{"handler", "listen", "status", "body", "latency", "error_rate", "healthy", "max_rooms", "max_clients_per_room"},
}

// decodeBuiltin decodes a builtin server. Defaults of every handler are
// filled in whatever the handler, so consumers never see zero values.
func (d *decoder) decodeBuiltin(blk *hclsyntax.Block) *Builtin {
	bi := &Builtin{Name: blk.Labels[0], DeclRange: blk.DefRange()}
	what := fmt.Sprintf("builtin %q", bi.Name)
	b := d.decodeBody(blk.Body, what, bi.DeclRange, builtinSchema)
	handlerOK := false
	if b.require("handler", strings.Join(Handlers, ", ")) {
		bi.Handler, handlerOK = b.enum("handler", "handler", "", Handlers)
	}
	bi.Listen, bi.ListenRange = b.listenAddress()
	bi.Status = b.status("status", DefaultBuiltinStatus)
	bi.Body = b.string("body", "")
	bi.Latency = b.duration("latency", 0, true)
	bi.ErrorRate = b.fraction("error_rate", 0)
	bi.Healthy = b.bool("healthy", true)
	bi.MaxRooms = b.int("max_rooms", DefaultMaxRooms, 1)
	bi.MaxClientsPerRoom = b.int("max_clients_per_room", DefaultMaxClientsPerRoom, 1)
	if !handlerOK {
		return bi
	}
	b.checkBodyAllowed(bi.Status, bi.Body)
	for _, owner := range Handlers {
		if owner == bi.Handler {
			continue
		}
		for _, name := range handlerAttributes[owner] {
			if b.present(name) {
				d.errorf(b.attrRange(name), "Attribute not valid for handler", "%s only applies to handler %q, but %s uses handler %q", name, owner, what, bi.Handler)
			}
		}
	}
	return bi
}
