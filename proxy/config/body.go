package config

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// maxInt bounds every integer attribute. No count in this file needs more,
// and the bound keeps values representable as int on every platform.
const maxInt = math.MaxInt32

// decoder accumulates diagnostics while one file is turned into a Config.
// It is used by a single goroutine for a single Parse call.
type decoder struct {
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics
	// locals are the declared local names, sorted, for "unknown local" hints.
	locals []string
	// hashOnRanges locates hash_on for messages about the pool's users.
	hashOnRanges map[*Upstream]hcl.Range
}

func (d *decoder) errorf(subject hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject.Ptr(),
	})
}

func (d *decoder) warnf(subject hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject.Ptr(),
	})
}

// blockSchema says what one kind of block body may contain.
type blockSchema struct {
	attributes []string // in the order messages list them
	blocks     []string // nested block types, in the order messages list them
}

// body is one block body after its attributes were checked against a schema
// and evaluated. Attributes whose expression failed to evaluate (already
// reported) or evaluated to null count as present or absent respectively:
// null means "not set", which lets a conditional fall back to the default.
type body struct {
	d        *decoder
	what     string    // e.g. `listener "web"`, the subject of messages
	defRange hcl.Range // the owning block, for "missing attribute" problems
	syntax   map[string]*hclsyntax.Attribute
	values   map[string]cty.Value // known, non-null values
	failed   map[string]bool      // present but unusable; already reported
	blocks   []*hclsyntax.Block   // nested blocks of a type the schema allows
}

// decodeBody checks b against schema, reporting unknown attributes and block
// types, and evaluates every allowed attribute.
func (d *decoder) decodeBody(b *hclsyntax.Body, what string, defRange hcl.Range, schema blockSchema) *body {
	out := &body{
		d:        d,
		what:     what,
		defRange: defRange,
		syntax:   map[string]*hclsyntax.Attribute{},
		values:   map[string]cty.Value{},
		failed:   map[string]bool{},
	}
	for name, attr := range b.Attributes {
		if !contains(schema.attributes, name) {
			d.errorf(attr.NameRange, "Unsupported attribute", "%s has no attribute %q;%s %s", what, name, suggest(name, schema.attributes), allowedList("attributes", schema.attributes))
			continue
		}
		out.syntax[name] = attr
		if !d.checkLocalReferences(attr.Expr) {
			out.failed[name] = true
			continue
		}
		val, diags := attr.Expr.Value(d.ctx)
		d.diags = append(d.diags, diags...)
		switch {
		case diags.HasErrors() || !val.IsWhollyKnown():
			// Unknown values only come from locals that already failed.
			out.failed[name] = true
		case !val.IsNull():
			out.values[name] = val
		}
	}
	for _, blk := range b.Blocks {
		if !contains(schema.blocks, blk.Type) {
			d.errorf(blk.TypeRange, "Unsupported block type", "%s cannot contain a %q block;%s %s", what, blk.Type, suggest(blk.Type, schema.blocks), allowedList("blocks", schema.blocks))
			continue
		}
		out.blocks = append(out.blocks, blk)
	}
	return out
}

func allowedList(kind string, names []string) string {
	if len(names) == 0 {
		return "no " + kind + " are allowed here"
	}
	return "allowed " + kind + ": " + strings.Join(names, ", ")
}

// present reports whether name was set to something other than null.
func (b *body) present(name string) bool {
	_, ok := b.values[name]
	return ok || b.failed[name]
}

// invalidate marks name as present but unusable, after its problem was
// reported, so checks that combine attributes skip it.
func (b *body) invalidate(name string) {
	b.failed[name] = true
	delete(b.values, name)
}

// exprRange is where the value of name is written.
func (b *body) exprRange(name string) hcl.Range {
	if a, ok := b.syntax[name]; ok {
		return a.Expr.Range()
	}
	return b.defRange
}

// attrRange is the whole `name = value` definition.
func (b *body) attrRange(name string) hcl.Range {
	if a, ok := b.syntax[name]; ok {
		return a.SrcRange
	}
	return b.defRange
}

// require reports a missing attribute; hint says what it should hold.
func (b *body) require(name, hint string) bool {
	if b.present(name) {
		return true
	}
	b.d.errorf(b.defRange, "Missing required attribute", "%s must set %s (%s)", b.what, name, hint)
	return false
}

// convert turns the value of name into ty; ok is false when the attribute
// is absent or unusable (a wrong type is reported here).
func (b *body) convert(name string, ty cty.Type, want string) (cty.Value, bool) {
	val, ok := b.values[name]
	if !ok {
		return cty.NilVal, false
	}
	conv, err := convert.Convert(val, ty)
	if err != nil {
		b.d.errorf(b.exprRange(name), "Incorrect attribute type", "%s must be %s, not %s", name, want, val.Type().FriendlyName())
		b.invalidate(name)
		return cty.NilVal, false
	}
	return conv, true
}

func (b *body) string(name, def string) string {
	v, ok := b.convert(name, cty.String, "a string")
	if !ok {
		return def
	}
	return v.AsString()
}

func (b *body) bool(name string, def bool) bool {
	v, ok := b.convert(name, cty.Bool, "true or false")
	if !ok {
		return def
	}
	return v.True()
}

// int decodes a whole number that must be at least min.
func (b *body) int(name string, def, min int) int {
	if n, ok := b.number(name, min, maxInt); ok {
		return n
	}
	return def
}

// number decodes a whole number between min and max; ok is false when the
// attribute is absent or invalid (reported).
func (b *body) number(name string, min, max int) (int, bool) {
	v, ok := b.convert(name, cty.Number, "a whole number")
	if !ok {
		return 0, false
	}
	f := v.AsBigFloat()
	if !f.IsInt() {
		b.d.errorf(b.exprRange(name), "Invalid number", "%s must be a whole number, not %s", name, f.Text('g', -1))
		b.invalidate(name)
		return 0, false
	}
	switch {
	case f.Cmp(big.NewFloat(float64(min))) < 0 && max == maxInt:
		b.d.errorf(b.exprRange(name), "Number out of range", "%s must be at least %d, not %s", name, min, f.Text('f', 0))
		b.invalidate(name)
		return 0, false
	case f.Cmp(big.NewFloat(float64(min))) < 0 || f.Cmp(big.NewFloat(float64(max))) > 0:
		b.d.errorf(b.exprRange(name), "Number out of range", "%s must be between %d and %d, not %s", name, min, max, f.Text('f', 0))
		b.invalidate(name)
		return 0, false
	}
	n, _ := f.Int64()
	return int(n), true
}

// fraction decodes a number between 0 and 1 inclusive.
func (b *body) fraction(name string, def float64) float64 {
	v, ok := b.convert(name, cty.Number, "a number")
	if !ok {
		return def
	}
	f, _ := v.AsBigFloat().Float64()
	if !(f >= 0 && f <= 1) {
		b.d.errorf(b.exprRange(name), "Number out of range", "%s must be between 0 and 1 (a fraction), not %s", name, v.AsBigFloat().Text('g', -1))
		b.invalidate(name)
		return def
	}
	return f
}

// duration decodes a Go duration string such as "250ms". Zero is allowed
// only when allowZero; negative durations never are.
func (b *body) duration(name string, def time.Duration, allowZero bool) time.Duration {
	text := b.string(name, "")
	if _, ok := b.values[name]; !ok {
		return def
	}
	dur, err := time.ParseDuration(text)
	if err != nil || dur < 0 || dur == 0 && !allowZero {
		b.invalidate(name)
	}
	switch {
	case err != nil:
		b.d.errorf(b.exprRange(name), "Invalid duration", "%s %q is not a duration; write a number with a unit, such as \"250ms\", \"5s\" or \"1m\"", name, text)
		return def
	case dur < 0:
		b.d.errorf(b.exprRange(name), "Invalid duration", "%s must not be negative, got %q", name, text)
		return def
	case dur == 0 && !allowZero:
		b.d.errorf(b.exprRange(name), "Invalid duration", "%s must be greater than 0, got %q", name, text)
		return def
	}
	return dur
}

// enum decodes a string that must be one of allowed; label names it in the
// summary of a problem. ok is false when the attribute is absent (def is
// returned) or invalid (reported).
func (b *body) enum(name, label, def string, allowed []string) (string, bool) {
	if _, set := b.values[name]; !set {
		return def, !b.failed[name]
	}
	s := b.string(name, "")
	if _, set := b.values[name]; !set {
		return def, false
	}
	if !contains(allowed, s) {
		b.d.errorf(b.exprRange(name), "Invalid "+label, "%s %q is not one of %s", name, s, strings.Join(allowed, ", "))
		b.invalidate(name)
		return def, false
	}
	return s, true
}

// stringList decodes a list of strings; nil when absent.
func (b *body) stringList(name, example string) []string {
	const want = "a list of strings"
	v, ok := b.convert(name, cty.List(cty.String), want)
	if !ok {
		return nil
	}
	out := make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, elem := it.Element()
		if elem.IsNull() {
			b.d.errorf(b.exprRange(name), "Invalid list element", "%s must not contain null; write it like %s", name, example)
			return nil
		}
		out = append(out, elem.AsString())
	}
	return out
}

// stringMap decodes a map of strings in key order; nil when absent.
func (b *body) stringMap(name string) (keys []string, m map[string]string) {
	const example = `{ "X-Name" = "value" }`
	v, ok := b.convert(name, cty.Map(cty.String), "a map of strings, like "+example)
	if !ok {
		return nil, nil
	}
	m = map[string]string{}
	for it := v.ElementIterator(); it.Next(); {
		k, elem := it.Element()
		if elem.IsNull() {
			b.d.errorf(b.mapKeyRange(name, k.AsString()), "Invalid map value", "%s[%q] must be a string, not null", name, k.AsString())
			continue
		}
		keys = append(keys, k.AsString())
		m[k.AsString()] = elem.AsString()
	}
	return keys, m
}

// mapKeyRange finds where key is written inside the object expression of
// name, so a bad header name is pointed at exactly; it falls back to the
// whole expression when the map was built some other way.
func (b *body) mapKeyRange(name, key string) hcl.Range {
	attr, ok := b.syntax[name]
	if !ok {
		return b.defRange
	}
	obj, ok := attr.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return attr.Expr.Range()
	}
	for _, item := range obj.Items {
		k, diags := item.KeyExpr.Value(b.d.ctx)
		if diags.HasErrors() || !k.IsKnown() || k.IsNull() {
			continue
		}
		if k, err := convert.Convert(k, cty.String); err == nil && k.AsString() == key {
			return item.KeyExpr.Range()
		}
	}
	return attr.Expr.Range()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns " did you mean "X"?" for the allowed name closest to a
// misspelt one, or "" when none is close.
func suggest(name string, allowed []string) string {
	best, bestDistance := "", 3 // more than two edits away is a different word
	for _, a := range allowed {
		if d := editDistance(name, a); d < bestDistance {
			best, bestDistance = a, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
