package config

import (
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions is what expressions may call: env plus a few pure string helpers.
func functions(lookupEnv func(string) (string, bool)) map[string]function.Function {
	return map[string]function.Function{
		"env":       envFunc(lookupEnv),
		"coalesce":  stdlib.CoalesceFunc,
		"format":    stdlib.FormatFunc,
		"join":      stdlib.JoinFunc,
		"lower":     stdlib.LowerFunc,
		"replace":   stdlib.ReplaceFunc,
		"split":     stdlib.SplitFunc,
		"trimspace": stdlib.TrimSpaceFunc,
		"upper":     stdlib.UpperFunc,
	}
}

// envFunc is env("NAME"): the variable's value, or "" when it is unset. An
// empty string rather than null keeps string templates working; a default is
// written env("X") != "" ? env("X") : "fallback".
func envFunc(lookupEnv func(string) (string, bool)) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or an empty string when it is not set.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			value, _ := lookupEnv(args[0].AsString())
			return cty.StringVal(value), nil
		},
	})
}

// evalContext is the context every expression is evaluated in.
func evalContext(locals map[string]cty.Value, funcs map[string]function.Function) *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"local": cty.ObjectVal(locals)},
		Functions: funcs,
	}
}

// decodeLocals evaluates the attributes of every locals block, each after
// the locals it refers to, and returns their values. A local that failed or
// sits on a reference cycle gets an unknown value, which later evaluations
// treat as "already reported" rather than raising follow-on errors.
func (d *decoder) decodeLocals(blocks []*hclsyntax.Block, funcs map[string]function.Function) map[string]cty.Value {
	defs := map[string]*hclsyntax.Attribute{}
	for _, blk := range blocks {
		for _, nested := range blk.Body.Blocks {
			d.errorf(nested.TypeRange, "Unsupported block type", "locals cannot contain a %q block; a locals block holds only attributes, like name = \"value\"", nested.Type)
		}
		for _, attr := range sortedAttributes(blk.Body) {
			if prev, dup := defs[attr.Name]; dup {
				d.errorf(attr.NameRange, "Duplicate local", "local.%s is declared twice; previously declared at %s", attr.Name, formatPos(prev.NameRange))
				continue
			}
			defs[attr.Name] = attr
		}
	}

	d.locals = make([]string, 0, len(defs))
	for name := range defs {
		d.locals = append(d.locals, name)
	}
	sort.Strings(d.locals)

	values := make(map[string]cty.Value, len(defs))
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = visiting
		stack = append(stack, name)
		defer func() {
			stack = stack[:len(stack)-1]
			state[name] = done
		}()
		attr := defs[name]
		for _, traversal := range attr.Expr.Variables() {
			dep, ok := localName(traversal)
			if !ok || defs[dep] == nil {
				continue // checkLocalReferences reports undeclared locals
			}
			switch state[dep] {
			case visiting:
				cycle := append(append([]string{}, stack[indexOf(stack, dep):]...), dep)
				d.errorf(traversal.SourceRange(), "Cyclic local value", "locals refer to each other in a cycle: local.%s", strings.Join(cycle, " -> local."))
				values[name] = cty.DynamicVal
				return
			case done:
			default:
				visit(dep)
			}
		}
		if !d.checkLocalReferences(attr.Expr) {
			values[name] = cty.DynamicVal
			return
		}
		known := make(map[string]cty.Value, len(defs))
		for n := range defs {
			known[n] = cty.DynamicVal
		}
		for n, v := range values {
			known[n] = v
		}
		val, diags := attr.Expr.Value(evalContext(known, funcs))
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			val = cty.DynamicVal
		}
		values[name] = val
	}
	for _, name := range sortedNames(defs) {
		if state[name] == 0 {
			visit(name)
		}
	}
	return values
}

// localName returns NAME for a traversal that starts with local.NAME.
func localName(t hcl.Traversal) (string, bool) {
	if t.RootName() != "local" || len(t) < 2 {
		return "", false
	}
	step, ok := t[1].(hcl.TraverseAttr)
	if !ok {
		return "", false
	}
	return step.Name, true
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// sortedAttributes returns a body's attributes in file order.
func sortedAttributes(b *hclsyntax.Body) []*hclsyntax.Attribute {
	attrs := make([]*hclsyntax.Attribute, 0, len(b.Attributes))
	for _, a := range b.Attributes {
		attrs = append(attrs, a)
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].SrcRange.Start.Byte < attrs[j].SrcRange.Start.Byte })
	return attrs
}

// sortedNames returns local names in file order, so diagnostics about
// cycles always start from the same local.
func sortedNames(defs map[string]*hclsyntax.Attribute) []string {
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return defs[names[i]].SrcRange.Start.Byte < defs[names[j]].SrcRange.Start.Byte
	})
	return names
}

// checkLocalReferences reports references to locals that are not declared,
// with the declared names; HCL alone would only say the object lacks an
// attribute. It returns false when expr should not be evaluated.
func (d *decoder) checkLocalReferences(expr hclsyntax.Expression) bool {
	ok := true
	for _, traversal := range expr.Variables() {
		name, isLocal := localName(traversal)
		if !isLocal || contains(d.locals, name) {
			continue
		}
		declared := "no locals are declared"
		if len(d.locals) > 0 {
			declared = "declared locals: " + strings.Join(d.locals, ", ")
		}
		d.errorf(traversal.SourceRange(), "Unknown local", "local.%s is not declared;%s %s", name, suggest(name, d.locals), declared)
		ok = false
	}
	return ok
}
