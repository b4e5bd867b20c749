package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// secretsScan tallies the scan of every certkeeper log of the suite
// (issue 12: no private key, API key, TSIG secret, EAB MAC key, master key
// or provider credential in any log line). Each server's cleanup scans its
// own log; TestMain prints the tally.
var secretsScan struct {
	sync.Mutex
	processes, lines, hits int
	needles                map[string]bool
}

// secretKeys are the configuration keys whose string values are secrets;
// a key ending in File names a file holding one.
var secretKeys = map[string]bool{
	"tsigSecret": true, "key": true, "masterKey": true, "clientSecret": true, "token": true,
	"apiToken": true, "apiKey": true, "apiSecret": true, "password": true, "hmacKey": true, "secretAccessKey": true,
}

// configSecrets collects the secrets in a server's configuration, the
// contents of the secret files it names, and the master key file certkeeper
// writes into its data directory.
func configSecrets(v any, key string, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			configSecrets(x, k, out)
		}
		if dir, ok := v["dataDir"].(string); ok {
			if raw, err := os.ReadFile(filepath.Join(dir, "master.key")); err == nil {
				out["the master key file"] = strings.TrimSpace(string(raw))
			}
		}
	case []map[string]any:
		for _, x := range v {
			configSecrets(x, key, out)
		}
	case []any:
		for _, x := range v {
			configSecrets(x, key, out)
		}
	case string:
		switch {
		case secretKeys[key]:
			out[key] = v
		case strings.HasSuffix(key, "File") && secretKeys[strings.TrimSuffix(key, "File")]:
			if raw, err := os.ReadFile(v); err == nil {
				out[key+" "+v] = strings.TrimSpace(string(raw))
			}
		}
	}
}

// scanLogForSecrets fails t when certkeeper's log holds a secret of its
// configuration or private key material.
func (s *server) scanLogForSecrets(t *testing.T) {
	out, err := os.ReadFile(s.logPath)
	if err != nil {
		return
	}
	secrets := map[string]string{"private key material": "PRIVATE KEY"}
	configSecrets(s.cfg, "", secrets)
	secretsScan.Lock()
	defer secretsScan.Unlock()
	if secretsScan.needles == nil {
		secretsScan.needles = map[string]bool{}
	}
	secretsScan.processes++
	secretsScan.lines += bytes.Count(out, []byte("\n"))
	for what, needle := range secrets {
		if len(needle) < 8 {
			continue // too short to tell from ordinary text
		}
		secretsScan.needles[needle] = true
		if bytes.Contains(out, []byte(needle)) {
			secretsScan.hits++
			t.Errorf("certkeeper's log (%s) holds %s", s.logPath, what)
		}
	}
}

// secretsScanReport is TestMain's summary line.
func secretsScanReport() string {
	secretsScan.Lock()
	defer secretsScan.Unlock()
	return fmt.Sprintf("e2e secrets scan: %d certkeeper logs, %d lines, %d distinct secrets, %d hits",
		secretsScan.processes, secretsScan.lines, len(secretsScan.needles), secretsScan.hits)
}

// TestConfigSecrets checks that the log scan looks for every kind of secret
// a server's configuration holds: nested values, secret files, the master
// key file in the data directory.
func TestConfigSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mac := filepath.Join(dir, "mac")
	if err := os.WriteFile(mac, []byte("bWFjLWtleS1mb3ItdGVzdGluZw==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.key"), []byte("bWFzdGVyLWtleS1mb3ItdGVzdGluZw==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"dataDir": dir,
		"dns":     map[string]any{"providers": []map[string]any{{"rfc2136": map[string]any{"tsigSecret": "dHNpZy1zZWNyZXQ="}}}},
		"auth":    map[string]any{"apiKeys": []map[string]any{{"name": "admin", "key": "api-key-0123456789", "roles": []string{"Certkeeper.Admin"}}}},
		"cas":     []any{map[string]any{"externalAccountBinding": map[string]any{"keyId": "kid", "hmacKeyFile": mac}}},
	}
	got := map[string]string{}
	configSecrets(cfg, "", got)
	want := []string{"dHNpZy1zZWNyZXQ=", "api-key-0123456789", "bWFjLWtleS1mb3ItdGVzdGluZw==", "bWFzdGVyLWtleS1mb3ItdGVzdGluZw=="}
	for _, w := range want {
		found := false
		for _, v := range got {
			found = found || v == w
		}
		if !found {
			t.Errorf("configSecrets missed %q; got %v", w, got)
		}
	}
	for what, v := range got {
		if v == "kid" || v == "admin" {
			t.Errorf("configSecrets took %s = %q, which is not a secret", what, v)
		}
	}
}
