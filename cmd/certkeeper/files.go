package main

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// pemFile is one file `certkeeper get` writes.
type pemFile struct {
	name string
	data []byte
	mode os.FileMode
}

// splitBundle turns the download endpoint's PEM (private key, leaf, issuers)
// into cert.pem, chain.pem, fullchain.pem and privkey.pem.
func splitBundle(bundle []byte) ([]pemFile, error) {
	var key, leaf, chain []byte
	rest := bundle
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		encoded := pem.EncodeToMemory(block)
		switch {
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			if key != nil {
				return nil, errors.New("the server sent two private keys")
			}
			key = encoded
		case block.Type == "CERTIFICATE" && leaf == nil:
			leaf = encoded
		case block.Type == "CERTIFICATE":
			chain = append(chain, encoded...)
		}
	}
	if key == nil || leaf == nil {
		return nil, errors.New("the server's answer holds no private key and certificate")
	}
	return []pemFile{
		{"cert.pem", leaf, 0o644},
		{"chain.pem", chain, 0o644},
		{"fullchain.pem", append(append([]byte{}, leaf...), chain...), 0o644},
		{"privkey.pem", key, 0o600},
	}, nil
}

// writeFiles writes each file into dir (created with mode 0700 when
// missing) through a temporary file and a rename, so that a reader never
// sees half a file, and returns the paths written.
func writeFiles(dir string, files []pemFile) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		tmp, err := os.CreateTemp(dir, "."+f.name+".*")
		if err != nil {
			return written, fmt.Errorf("writing %s: %w", path, err)
		}
		_, werr := tmp.Write(f.data)
		cerr := tmp.Chmod(f.mode)
		if err := errors.Join(werr, cerr, tmp.Sync(), tmp.Close()); err != nil {
			os.Remove(tmp.Name())
			return written, fmt.Errorf("writing %s: %w", path, err)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			os.Remove(tmp.Name())
			return written, fmt.Errorf("writing %s: %w", path, err)
		}
		written = append(written, path)
	}
	return written, nil
}
