package secret

import (
	"strings"
	"testing"
)

// FuzzParseKey feeds arbitrary text to ParseKey, which reads the master key
// file: it must not panic, an error must not quote the input, and a key it
// returns must open what it sealed. The seed corpus is in
// testdata/fuzz/FuzzParseKey.
func FuzzParseKey(f *testing.F) {
	_, good, err := NewKey()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good + "\n")
	f.Add(good[:10])
	f.Add("")
	f.Add(strings.Repeat("A", 44))
	f.Fuzz(func(t *testing.T, encoded string) {
		k, err := ParseKey(encoded)
		if err != nil {
			if trimmed := strings.TrimSpace(encoded); len(trimmed) >= 8 && strings.Contains(err.Error(), trimmed) {
				t.Fatalf("error quotes the key: %v", err)
			}
			return
		}
		sealed, err := k.Seal([]byte("plain"), []byte("ad"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Open(sealed, []byte("ad")); err != nil || string(got) != "plain" {
			t.Fatalf("Open(Seal) = %q, %v", got, err)
		}
	})
}
