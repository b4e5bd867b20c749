package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	valid := filepath.Join(dir, "valid.yaml")
	if err := os.WriteFile(valid, []byte("dataDir: "+dir+"\nmasterKeyFile: "+filepath.Join(dir, "k")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	invalid := filepath.Join(dir, "invalid.yaml")
	if err := os.WriteFile(invalid, []byte("dataDir: "+dir+"\njobs:\n  rescueAfter: 1s\nhousekeeping:\n  interval: 0s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{"valid", []string{"check", "--config", valid}, nil, 0,
			"the configuration is valid: listen 127.0.0.1:8080, SQLite " + filepath.Join(dir, "certkeeper.db"), nil},
		{"environment applies", []string{"check", "--config", valid},
			map[string]string{"CERTKEEPER_DATABASE": "postgres://u:secret-password@db/ck"}, 0,
			"PostgreSQL", nil},
		{"every problem", []string{"check", "--config", invalid}, nil, 2, "",
			[]string{"jobs.rescueAfter: must be at least 2s", "housekeeping.interval: must be positive"}},
		{"no arguments", []string{"check", "extra"}, nil, 2, "", []string{"check takes no arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"CERTKEEPER_DATABASE", "CERTKEEPER_CONFIG", "CERTKEEPER_MASTER_KEY", "CERTKEEPER_DATA_DIR"} {
				t.Setenv(k, tt.env[k])
			}
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; stderr %s", code, tt.wantCode, &stderr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", &stdout, tt.wantStdout)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", &stderr, w)
				}
			}
			if strings.Contains(stdout.String()+stderr.String(), "secret-password") {
				t.Error("the database password was printed")
			}
		})
	}
}
