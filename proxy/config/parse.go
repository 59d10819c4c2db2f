package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// LoadFile reads and decodes the file at path. It returns the raw bytes even
// when the diagnostics hold errors, so callers can show source snippets or
// hash what is on disk; src is nil only when the file cannot be read, which is
// itself reported as a diagnostic. cfg is nil whenever diags.HasErrors().
func LoadFile(path string) (cfg *Config, src []byte, diags hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read configuration file",
			Detail:   err.Error(),
			// A range with only a file name: there is no line to point at.
			Subject: &hcl.Range{Filename: path},
		}}
	}
	cfg, diags = Parse(path, src)
	return cfg, src, diags
}

// Parse decodes and validates src, naming it filename in Config.Path and in
// every diagnostic. It reports every problem at once, sorted by position, and
// returns a nil Config whenever diags.HasErrors(). Warnings may accompany a
// valid Config. env() in expressions reads the process environment.
func Parse(filename string, src []byte) (*Config, hcl.Diagnostics) {
	return parse(filename, src, os.LookupEnv)
}

func parse(filename string, src []byte, lookupEnv func(string) (string, bool)) (*Config, hcl.Diagnostics) {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		sortDiagnostics(diags)
		return nil, diags
	}
	d := &decoder{diags: diags, hashOnRanges: map[*Upstream]hcl.Range{}}
	cfg := d.decodeFile(filename, file.Body.(*hclsyntax.Body), lookupEnv)
	if !d.diags.HasErrors() && len(cfg.Listeners) == 0 && len(cfg.Builtins) == 0 && cfg.Admin == nil {
		// Applying such a file would stop everything. It is almost always a
		// save caught half-written (an editor truncates, then writes), so
		// it is refused like any other broken save.
		pos := hcl.InitialPos
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Nothing to run",
			Detail:   "the file declares no listener, builtin or admin block; refusing a configuration that would stop everything",
			Subject:  &hcl.Range{Filename: filename, Start: pos, End: pos},
		})
	}
	sortDiagnostics(d.diags)
	if d.diags.HasErrors() {
		return nil, d.diags
	}
	return cfg, d.diags
}

var topSchema = blockSchema{
	attributes: []string{"shutdown_timeout"},
	blocks:     []string{"admin", "log", "locals", "listener", "upstream", "builtin"},
}

func (d *decoder) decodeFile(filename string, root *hclsyntax.Body, lookupEnv func(string) (string, bool)) *Config {
	// Locals come first because every other expression may refer to them.
	var localsBlocks []*hclsyntax.Block
	for _, blk := range root.Blocks {
		if blk.Type == "locals" && d.checkLabels(blk, nil) {
			localsBlocks = append(localsBlocks, blk)
		}
	}
	funcs := functions(lookupEnv)
	d.ctx = evalContext(d.decodeLocals(localsBlocks, funcs), funcs)

	top := d.decodeBody(root, "the top level", hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}, topSchema)
	cfg := &Config{
		Path:            filename,
		ShutdownTimeout: top.duration("shutdown_timeout", DefaultShutdownTimeout, false),
		Log:             Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
	}
	listeners := newNameSet("listener")
	upstreams := newNameSet("upstream")
	builtins := newNameSet("builtin")
	singletons := map[string]hcl.Range{}
	for _, blk := range top.blocks {
		switch blk.Type {
		case "locals":
			// decoded above
		case "admin":
			if d.checkLabels(blk, nil) && d.firstOfKind(singletons, blk) {
				cfg.Admin = d.decodeAdmin(blk)
			}
		case "log":
			if d.checkLabels(blk, nil) && d.firstOfKind(singletons, blk) {
				cfg.Log = d.decodeLog(blk)
			}
		case "listener":
			if d.checkLabels(blk, []string{"NAME"}) && d.declare(listeners, blk) {
				cfg.Listeners = append(cfg.Listeners, d.decodeListener(blk))
			}
		case "upstream":
			if d.checkLabels(blk, []string{"NAME"}) && d.declare(upstreams, blk) {
				cfg.Upstreams = append(cfg.Upstreams, d.decodeUpstream(blk))
			}
		case "builtin":
			if d.checkLabels(blk, []string{"NAME"}) && d.declare(builtins, blk) {
				cfg.Builtins = append(cfg.Builtins, d.decodeBuiltin(blk))
			}
		}
	}
	d.checkReferences(cfg)
	d.checkAddressConflicts(cfg)
	return cfg
}

// checkLabels reports a block whose labels do not match labelNames, such as
// a listener without a name or an admin block with one.
func (d *decoder) checkLabels(blk *hclsyntax.Block, labelNames []string) bool {
	usage := blk.Type
	for _, l := range labelNames {
		usage += fmt.Sprintf(" %q", l)
	}
	usage += " { ... }"
	switch {
	case len(blk.Labels) > len(labelNames):
		d.errorf(blk.LabelRanges[len(labelNames)], "Unexpected block label", "%s blocks take %s; write %s", blk.Type, countLabels(labelNames), usage)
		return false
	case len(blk.Labels) < len(labelNames):
		d.errorf(blk.DefRange(), "Missing block label", "%s blocks take %s; write %s", blk.Type, countLabels(labelNames), usage)
		return false
	}
	return true
}

func countLabels(labelNames []string) string {
	switch len(labelNames) {
	case 0:
		return "no labels"
	case 1:
		return "one label, the " + strings.ToLower(labelNames[0])
	default:
		return fmt.Sprintf("%d labels", len(labelNames))
	}
}

// firstOfKind reports a second block of a kind that may appear only once.
func (d *decoder) firstOfKind(seen map[string]hcl.Range, blk *hclsyntax.Block) bool {
	if prev, dup := seen[blk.Type]; dup {
		d.errorf(blk.DefRange(), "Duplicate "+blk.Type+" block", "only one %s block is allowed here; previously declared at %s", blk.Type, formatPos(prev))
		return false
	}
	seen[blk.Type] = blk.DefRange()
	return true
}

// nameSet tracks the names declared for one kind of block.
type nameSet struct {
	kind string
	at   map[string]hcl.Range
}

func newNameSet(kind string) *nameSet {
	return &nameSet{kind: kind, at: map[string]hcl.Range{}}
}

// declare records the name in blk's first label, reporting a bad or
// duplicate name at the label. A duplicate is not decoded.
func (d *decoder) declare(set *nameSet, blk *hclsyntax.Block) bool {
	name, at := blk.Labels[0], blk.LabelRanges[0]
	if prev, dup := set.at[name]; dup {
		d.errorf(at, "Duplicate "+set.kind, "%s %q is declared twice; previously declared at %s", set.kind, name, formatPos(prev))
		return false
	}
	set.at[name] = at
	if err := checkName(name); err != nil {
		d.errorf(at, "Invalid "+set.kind+" name", "%v", err)
	}
	return true
}

var adminSchema = blockSchema{attributes: []string{"listen"}}

func (d *decoder) decodeAdmin(blk *hclsyntax.Block) *Admin {
	b := d.decodeBody(blk.Body, "admin", blk.DefRange(), adminSchema)
	a := &Admin{}
	a.Listen, a.ListenRange = b.listenAddress()
	return a
}

var logSchema = blockSchema{attributes: []string{"level", "format", "access"}}

func (d *decoder) decodeLog(blk *hclsyntax.Block) Log {
	b := d.decodeBody(blk.Body, "log", blk.DefRange(), logSchema)
	level, _ := b.enum("level", "log level", DefaultLogLevel, LogLevels)
	format, _ := b.enum("format", "log format", DefaultLogFormat, LogFormats)
	return Log{Level: level, Format: format, Access: b.bool("access", false)}
}

// listenAddress decodes the required listen attribute of b.
func (b *body) listenAddress() (string, hcl.Range) {
	if !b.require("listen", `an address such as "127.0.0.1:8080"`) {
		return "", b.defRange
	}
	addr := b.string("listen", "")
	if _, ok := b.values["listen"]; !ok {
		return "", b.exprRange("listen")
	}
	if _, err := parseListenAddress(addr); err != nil {
		b.d.errorf(b.exprRange("listen"), "Invalid listen address", "%v", err)
	}
	return addr, b.exprRange("listen")
}
