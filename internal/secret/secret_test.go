package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k, encoded, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	same, err := ParseKey(encoded)
	if err != nil {
		t.Fatalf("ParseKey(NewKey's encoding): %v", err)
	}
	other, _, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")
	sealed, err := k.Seal(plain, []byte("version-1"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "PRIVATE KEY") || strings.Contains(sealed, "secret") {
		t.Fatalf("sealed value shows the plaintext: %q", sealed)
	}
	got, err := same.Open(sealed, []byte("version-1"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want the plaintext", got, err)
	}
	again, _ := k.Seal(plain, []byte("version-1"))
	if again == sealed {
		t.Error("two seals of the same plaintext are equal: the nonce is not random")
	}
	for name, tc := range map[string]struct {
		key        *Key
		sealed     string
		associated string
	}{
		"wrong key":            {other, sealed, "version-1"},
		"moved to another row": {k, sealed, "version-2"},
		"truncated":            {k, sealed[:len(sealed)-4], "version-1"},
		"no prefix":            {k, strings.TrimPrefix(sealed, "v1:"), "version-1"},
		"not base64":           {k, "v1:!!!", "version-1"},
		"empty":                {k, "", "version-1"},
	} {
		if _, err := tc.key.Open(tc.sealed, []byte(tc.associated)); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Open error = %v, want ErrOpen", name, err)
		}
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{7}, 32)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if _, err := ParseKey(enc.EncodeToString(raw)); err != nil {
			t.Errorf("ParseKey(%q): %v", enc.EncodeToString(raw), err)
		}
	}
	for _, bad := range []string{"", "not base64 !", base64.StdEncoding.EncodeToString(raw[:16])} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted a bad key", bad)
		}
	}
}

func TestStringIsRedacted(t *testing.T) {
	t.Parallel()
	s := String("hunter2-very-secret")
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "secret", s, "key", &Key{})
	out := buf.String() + fmt.Sprint(s) + fmt.Sprintf("%v %s %#v", s, s, s)
	if strings.Contains(out, "hunter2") {
		t.Errorf("secret leaked: %s", out)
	}
	if s.Reveal() != "hunter2-very-secret" {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}
