package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as a config file: it must return a
// config or an error, never panic, and a config it returns must be valid.
// The seed corpus in testdata/fuzz/FuzzLoad holds valid and broken configs.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("acme:\n  endpoint: \"\"\ncas:\n  - name: zerossl\n    externalAccountBinding: {keyId: k, hmacKey: c2VjcmV0LWVhYi1obWFjLWtleS1mb3ItdGVzdGluZyE, algorithm: HS512}\n" +
		"  - name: le\n    endpoint: letsencrypt-staging\ndefaultCAs: [le, zerossl]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		// …File keys and caBundle make Load read the files they name; an
		// input naming a device (/dev/zero) would read forever, which is not
		// a defect of Load, so such inputs are not tried.
		for _, special := range []string{"/dev/", "/proc/", "/sys/"} {
			if strings.Contains(string(data), special) {
				return
			}
		}
		path := dir + "/config.yaml"
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path, nil)
		if (c == nil) == (err == nil) {
			t.Fatalf("Load() = %v, %v: want exactly one of a config and an error", c, err)
		}
		if c != nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("Load() returned a config that does not validate: %v", err)
			}
		}
	})
}
