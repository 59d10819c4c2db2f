package config

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/config/invalid/*.golden from the current output")

// repoRoot is where fixture paths in goldens are relative to; tests run in
// this package's directory.
const repoRoot = "../.."

// fixtures lists testdata/config/DIR/*.hcl as repo-relative paths.
func fixtures(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(repoRoot, "testdata", "config", dir, "*.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 {
		t.Fatalf("no fixtures in testdata/config/%s", dir)
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		rel, err := filepath.Rel(repoRoot, m)
		if err != nil {
			t.Fatal(err)
		}
		names[i] = filepath.ToSlash(rel)
	}
	return names
}

// parseFixture parses a fixture under its repo-relative name, so positions
// in diagnostics read the same as `switchyard validate` run from the root.
func parseFixture(t *testing.T, name string) (*Config, []string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := Parse(name, src)
	return cfg, FormatDiagnostics(diags)
}

func TestValidFixtures(t *testing.T) {
	t.Setenv("DEPLOY_ENV", "test")
	for _, name := range fixtures(t, "valid") {
		t.Run(filepath.Base(name), func(t *testing.T) {
			cfg, lines := parseFixture(t, name)
			if len(lines) > 0 {
				t.Errorf("want no diagnostics, got:\n%s", strings.Join(lines, "\n"))
			}
			if cfg == nil {
				t.Fatal("got nil Config")
			}
			if cfg.Path != name {
				t.Errorf("Path = %q, want %q", cfg.Path, name)
			}
		})
	}
}

// positionPattern pulls FILE:LINE,COL off the front of a diagnostic line.
var positionPattern = regexp.MustCompile(`^([^:]+):(\d+),(\d+): `)

func TestInvalidFixtures(t *testing.T) {
	for _, name := range fixtures(t, "invalid") {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".hcl"), func(t *testing.T) {
			cfg, lines := parseFixture(t, name)
			if cfg != nil {
				t.Error("got a Config for an invalid file")
			}
			got := strings.Join(lines, "\n") + "\n"
			goldenPath := filepath.Join(repoRoot, filepath.FromSlash(strings.TrimSuffix(name, ".hcl")+".golden"))
			if *update {
				if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (run go test ./proxy/config -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\ngot:\n%swant:\n%s", goldenPath, got, want)
			}

			// Every line must point into this file, at a position that exists.
			src, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			srcLines := strings.Split(string(src), "\n")
			errorsSeen := 0
			for _, line := range lines {
				m := positionPattern.FindStringSubmatch(line)
				if m == nil {
					t.Errorf("line has no FILE:LINE,COL prefix: %s", line)
					continue
				}
				lineNo, _ := strconv.Atoi(m[2])
				col, _ := strconv.Atoi(m[3])
				if m[1] != name || lineNo < 1 || lineNo > len(srcLines) || col < 1 || col > len(srcLines[lineNo-1])+1 {
					t.Errorf("position out of range of %s: %s", name, line)
				}
				if !strings.HasPrefix(line[len(m[0]):], "warning: ") {
					errorsSeen++
				}
			}
			if errorsSeen == 0 {
				t.Error("no error reported")
			}
		})
	}
}
