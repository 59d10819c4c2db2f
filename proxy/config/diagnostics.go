package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// FormatDiagnostic renders d on one line as "FILE:LINE,COL: summary: detail",
// using the start of d.Subject. A Subject that names only a file (line 0, as
// for a file that cannot be read) gives "FILE: summary: detail", and no Subject
// at all gives "summary: detail". An empty detail is left out, a warning
// carries "warning: " after the position, and line breaks inside the summary
// or detail are folded into spaces so the result is always one line.
func FormatDiagnostic(d *hcl.Diagnostic) string {
	var b strings.Builder
	if s := d.Subject; s != nil {
		switch {
		case s.Start.Line > 0:
			fmt.Fprintf(&b, "%s:%d,%d: ", s.Filename, s.Start.Line, s.Start.Column)
		case s.Filename != "":
			fmt.Fprintf(&b, "%s: ", s.Filename)
		}
	}
	if d.Severity == hcl.DiagWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(oneLine(d.Summary))
	if detail := oneLine(d.Detail); detail != "" {
		b.WriteString(": ")
		b.WriteString(detail)
	}
	return b.String()
}

// FormatDiagnostics renders each diagnostic with FormatDiagnostic, in order.
func FormatDiagnostics(diags hcl.Diagnostics) []string {
	lines := make([]string, 0, len(diags))
	for _, d := range diags {
		lines = append(lines, FormatDiagnostic(d))
	}
	return lines
}

// formatPos renders a position the way FormatDiagnostic does, for details
// such as "previously declared at FILE:LINE,COL".
func formatPos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// sortDiagnostics orders diagnostics by where they point, so output follows
// the file and does not depend on map iteration inside HCL or this package.
// Diagnostics without a Subject come first; ties keep their relative order.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Start.Byte != b.Start.Byte:
			return a.Start.Byte < b.Start.Byte
		default:
			return false
		}
	})
}
