package app_test

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certkeeper/certkeeper/internal/store"
)

// TestDiskFull puts the data directory on a small tmpfs, fills it, and
// checks that an issue request then fails with a clear answer instead of
// hanging or corrupting the database, and that issuance works again once
// space returns, with PRAGMA integrity_check ok. Mounting needs root (CI
// runs as root).
func TestDiskFull(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting a tmpfs needs root; CI runs this as root")
	}
	t.Parallel()
	d := startDeps(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	cfg := d.config(t, "sqlite")
	cfg.DataDir = dir
	base := service(t, cfg)

	status, body := issueAndWait(t, base, `{"dnsNames":["before-full.example.test"],"keyType":"EC"}`)
	if status != http.StatusOK {
		t.Fatalf("issuance before the disk is full ended %d: %s", status, body)
	}
	// Fill the file system.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()

	// While full: an answer, not a hang; no success.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/api/certificate",
		strings.NewReader(`{"dnsNames":["while-full.example.test"],"keyType":"EC"}`))
	req.Header.Set("X-Functions-Key", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request while the disk is full: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fullStatus, fullBody := resp.StatusCode, string(b)
	if resp.StatusCode == http.StatusAccepted {
		fullStatus, fullBody = waitFor(t, resp)
	}
	t.Logf("FIGURE disk full: %d %s", fullStatus, fullBody)
	if fullStatus == http.StatusOK {
		t.Errorf("issuance succeeded on a full disk?")
	}

	// Space returns: issuance works again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	status, body = issueAndWait(t, base, `{"dnsNames":["after-full.example.test"],"keyType":"EC"}`)
	t.Logf("FIGURE after space returns: %d", status)
	if status != http.StatusOK {
		t.Errorf("issuance after space returned ended %d: %s", status, body)
	}
	// Read beside the running service (SQLite serves one process).
	st, err := store.OpenShared(t.Context(), filepath.Join(dir, "certkeeper.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var check string
	if err := st.DB().QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("PRAGMA integrity_check = %q, %v", check, err)
	}
	t.Logf("FIGURE disk full integrity_check: %s", check)
}
