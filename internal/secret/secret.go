// Package secret holds what protects secrets: the master key that encrypts
// private keys at rest (AES-256-GCM), and the String type that keeps secrets
// out of logs.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
)

// String is a secret value. It prints and logs as [redacted]; call Reveal
// where the value itself is needed.
type String string

// Reveal returns the secret itself.
func (s String) Reveal() string { return string(s) }

// String implements fmt.Stringer and hides the value.
func (s String) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer and hides the value.
func (s String) GoString() string { return "[redacted]" }

// LogValue implements slog.LogValuer and hides the value.
func (s String) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// KeySize is the size of a master key in bytes (AES-256).
const KeySize = 32

// Key is a master key. The zero value is not usable; build one with ParseKey
// or NewKey. A Key is safe for concurrent use.
type Key struct {
	aead cipher.AEAD
}

// NewKey returns a random master key and its base64 encoding.
func NewKey() (*Key, string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", fmt.Errorf("generating master key: %w", err)
	}
	k, err := keyFromBytes(raw)
	if err != nil {
		return nil, "", err
	}
	return k, base64.StdEncoding.EncodeToString(raw), nil
}

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) master
// key of exactly 32 bytes.
func ParseKey(encoded string) (*Key, error) {
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		raw, err = enc.DecodeString(encoded)
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("master key is not valid base64")
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("master key is %d bytes, want %d", len(raw), KeySize)
	}
	return keyFromBytes(raw)
}

func keyFromBytes(raw []byte) (*Key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("creating cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("creating GCM: %w", err)
	}
	return &Key{aead: aead}, nil
}

// LogValue implements slog.LogValuer and hides the key.
func (k *Key) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// sealedPrefix marks the format of sealed values so that it can change later.
const sealedPrefix = "v1:"

// Seal encrypts plaintext with AES-256-GCM. associated is authenticated but
// not encrypted: pass what the value belongs to (a certificate version id) so a
// sealed value cannot be moved to another row. The result is text-safe.
func (k *Key) Seal(plaintext, associated []byte) (string, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("generating nonce: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, plaintext, associated)
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// ErrOpen is returned when a sealed value cannot be decrypted: a wrong master
// key, a value moved to another row, or corrupted data.
var ErrOpen = errors.New("cannot decrypt: wrong master key or corrupted data")

// Open decrypts a value made by Seal with the same associated data.
func (k *Key) Open(sealed string, associated []byte) ([]byte, error) {
	if len(sealed) < len(sealedPrefix) || sealed[:len(sealedPrefix)] != sealedPrefix {
		return nil, ErrOpen
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed[len(sealedPrefix):])
	if err != nil || len(raw) < k.aead.NonceSize() {
		return nil, ErrOpen
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], associated)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
