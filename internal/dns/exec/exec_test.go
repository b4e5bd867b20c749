package exec_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/exec"
)

// TestExec runs the RRset scenario through a shell script that keeps the
// values in a file per record name, as lego's exec contract has it.
func TestExec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "dns.sh")
	err := os.WriteFile(script, []byte(`#!/bin/sh
set -e
store="$1"; action="$2"; fqdn="$3"; value="$4"
f="$store/$fqdn"
case "$value" in fail*) echo "the DNS API said no to $fqdn" >&2; exit 3;; esac
touch "$f"
case "$action" in
present) grep -qx "$value" "$f" || echo "$value" >> "$f" ;;
cleanup) grep -vx "$value" "$f" > "$f.new" || true; mv "$f.new" "$f" ;;
*) echo "unknown action $action" >&2; exit 2 ;;
esac
`), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	p, err := exec.New(exec.Config{Command: script, Args: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	fqdn := "_acme-challenge.www.example.com."
	dnstest.Scenario(t, p, "example.com", fqdn, func() []string {
		data, _ := os.ReadFile(filepath.Join(dir, fqdn))
		return slices.DeleteFunc(strings.Split(string(data), "\n"), func(s string) bool { return s == "" })
	})
	err = p.Present(t.Context(), "example.com", fqdn, []string{"fail-now"})
	if err == nil || !strings.Contains(err.Error(), "exit status 3: the DNS API said no to "+fqdn) {
		t.Errorf("failing script: %v", err)
	}
}
