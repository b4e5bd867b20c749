package main

import (
	"strings"
	"testing"
)

// The messages below have the shapes govulncheck v1.9.0 writes with
// -format json (taken from a real run, trimmed).
const config = `{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck","scanner_version":"v1.9.0","db":"file:///db","db_last_modified":"2026-11-05T23:49:57Z","go_version":"go1.26.8","scan_level":"symbol","scan_mode":"source"}}
`

func osvMsg(id, summary string) string {
	return `{"osv":{"id":"` + id + `","summary":"` + summary + `"}}` + "\n"
}

// finding returns a finding of the given level: "module", "package" or "symbol".
func finding(id, module, version, fixed, level string) string {
	frame := `"module":"` + module + `","version":"` + version + `"`
	switch level {
	case "package":
		frame += `,"package":"` + module + `/pkg"`
	case "symbol":
		frame += `,"package":"` + module + `/pkg","function":"Parse"`
	}
	fix := ""
	if fixed != "" {
		fix = `"fixed_version":"` + fixed + `",`
	}
	return `{"finding":{"osv":"` + id + `",` + fix + `"trace":[{` + frame + `}]}}` + "\n"
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         string
		wantFailed bool
		wantOut    []string
	}{
		{
			name: "standard library reachable with a fix fails: move the toolchain",
			in: config + osvMsg("GO-2026-6809", "Distrust compromised intermediates") +
				finding("GO-2026-6809", "stdlib", "v1.26.8", "v1.26.10", "module") +
				finding("GO-2026-6809", "stdlib", "v1.26.8", "v1.26.10", "package") +
				finding("GO-2026-6809", "stdlib", "v1.26.8", "v1.26.10", "symbol"),
			wantFailed: true,
			wantOut: []string{
				"last modified 2026-11-05 23:49 UTC",
				"GO-2026-6809  stdlib@v1.26.8, fixed in v1.26.10: REACHABLE and FIXABLE: move go.mod's toolchain to go1.26.10",
				"Distrust compromised intermediates",
				"1 vulnerabilities known for what it builds with: 1 reachable (1 standard library, 0 without a fix, 1 fixable)",
			},
		},
		{
			name: "third-party reachable with a fix fails",
			in: config + osvMsg("GO-2026-6860", "Quadratic text nodes") +
				finding("GO-2026-6860", "golang.org/x/net", "v0.61.0", "v0.62.0", "module") +
				finding("GO-2026-6860", "golang.org/x/net", "v0.61.0", "v0.62.0", "symbol"),
			wantFailed: true,
			wantOut: []string{
				"REACHABLE and FIXABLE: upgrade golang.org/x/net to v0.62.0 [golang.org/x/net/pkg]",
				"1 reachable (0 standard library, 0 without a fix, 1 fixable)",
			},
		},
		{
			name: "third-party reachable without a fix is reported, not failed",
			in: config +
				finding("GO-2026-0001", "example.com/m", "v1.0.0", "", "symbol"),
			wantOut: []string{"REACHABLE, no fix published", "1 without a fix, 0 fixable"},
		},
		{
			name: "third-party imported but not called does not fail",
			in: config +
				finding("GO-2026-0002", "example.com/m", "v1.0.0", "v1.0.1", "module") +
				finding("GO-2026-0002", "example.com/m", "v1.0.0", "v1.0.1", "package"),
			wantOut: []string{"not called", "0 reachable", "1 in imported packages but not called"},
		},
		{
			name: "one advisory in two modules counts in each",
			in: config +
				finding("GO-2026-6617", "stdlib", "v1.26.8", "v1.26.9", "symbol") +
				finding("GO-2026-6617", "golang.org/x/net", "v0.59.0", "v0.60.0", "symbol"),
			wantFailed: true,
			wantOut:    []string{"2 vulnerabilities known", "2 reachable (1 standard library, 0 without a fix, 2 fixable)"},
		},
		{
			name: "standard library reachable without a fix is reported, not failed",
			in: config +
				finding("GO-2026-0003", "stdlib", "v1.26.10", "", "symbol"),
			wantOut: []string{"REACHABLE, no fix published", "1 reachable (1 standard library, 1 without a fix, 0 fixable)"},
		},
		{
			name:    "nothing found",
			in:      config,
			wantOut: []string{"0 vulnerabilities known for what it builds with: 0 reachable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			failed, err := summarize(strings.NewReader(tt.in), &out, "m")
			if err != nil {
				t.Fatalf("summarize: %v", err)
			}
			if failed != tt.wantFailed {
				t.Errorf("failed = %v, want %v; output:\n%s", failed, tt.wantFailed, out.String())
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q; output:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestSummarizeBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "no config message"},
		{"text output instead of JSON", "=== Symbol Results ===\n", "reading govulncheck JSON"},
		{"truncated", config + `{"finding":{"osv":`, "reading govulncheck JSON"},
		{"finding without trace", config + `{"finding":{"osv":"GO-1","trace":[]}}`, "GO-1 has no trace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := summarize(strings.NewReader(tt.in), &strings.Builder{}, "m")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
