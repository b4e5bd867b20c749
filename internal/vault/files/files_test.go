package files_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certkeeper/certkeeper/internal/vault"
	"github.com/certkeeper/certkeeper/internal/vault/files"
	"github.com/certkeeper/certkeeper/internal/vault/vaulttest"
)

func newFiles(t *testing.T, cfg files.Config) *files.Files {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	f, err := files.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConformance(t *testing.T) {
	t.Parallel()
	vaulttest.Run(t, func(t *testing.T) vault.Destination {
		return newFiles(t, files.Config{PFX: true, PFXPassword: "pfx-pass"})
	}, vaulttest.Options{OrderedWrites: true})
}

func TestLayoutModesAndOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Fatal("this test sets file owners and needs root, as CI runs it")
	}
	dir := t.TempDir()
	f := newFiles(t, files.Config{Dir: dir, Owner: "nobody", Group: "nogroup", Mode: 0o640, KeyMode: 0o400,
		DirMode: 0o710, PFX: true, PFXPassword: "s3cret"})
	v := vaulttest.NewVersion(t, "www", time.Now().Add(-time.Hour))
	if _, err := f.Deliver(t.Context(), v); err != nil {
		t.Fatal(err)
	}
	uid, _ := files.LookupUser("nobody")
	gid, _ := files.LookupGroup("nogroup")
	certDir := filepath.Join(dir, "www")
	tests := []struct {
		name string
		mode os.FileMode
		want []byte
	}{
		{files.CertFile, 0o640, v.CertPEM},
		{files.ChainFile, 0o640, v.ChainPEM},
		{files.FullchainFile, 0o640, append(append([]byte{}, v.CertPEM...), v.ChainPEM...)},
		{files.KeyFile, 0o400, v.KeyPEM},
		{files.PFXFile, 0o400, nil},
		{"", 0o710 | os.ModeDir, nil},
	}
	for _, tt := range tests {
		t.Run("file "+tt.name, func(t *testing.T) {
			path := filepath.Join(certDir, tt.name)
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode() != tt.mode {
				t.Errorf("mode = %v, want %v", info.Mode(), tt.mode)
			}
			st := info.Sys().(*syscall.Stat_t)
			if int(st.Uid) != uid || int(st.Gid) != gid {
				t.Errorf("owner = %d:%d, want %d:%d (nobody:nogroup)", st.Uid, st.Gid, uid, gid)
			}
			if tt.want != nil {
				got, _ := os.ReadFile(path)
				if !bytes.Equal(got, tt.want) {
					t.Errorf("content = %q, want %q", got, tt.want)
				}
			}
		})
	}
	raw, err := os.ReadFile(filepath.Join(certDir, files.PFXFile))
	if err != nil {
		t.Fatal(err)
	}
	_, leaf, chain, err := pkcs12.DecodeChain(raw, "s3cret")
	if err != nil {
		t.Fatalf("decoding cert.pfx with the configured password: %v", err)
	}
	if !bytes.Equal(vault.EncodeCertificates(append([]*x509.Certificate{leaf}, chain...)), append(append([]byte{}, v.CertPEM...), v.ChainPEM...)) {
		t.Error("cert.pfx does not hold the leaf and chain")
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(certDir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestReadersNeverSeeHalfAFile reads fullchain.pem and privkey.pem in a loop
// while versions are delivered one after another: every read is a whole
// file of one of the versions.
func TestReadersNeverSeeHalfAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := newFiles(t, files.Config{Dir: dir})
	base := time.Now().Add(-time.Hour)
	var versions []vault.Version
	valid := map[string]bool{}
	for i := range 20 {
		v := vaulttest.NewVersion(t, "atomic", base.Add(time.Duration(i)*time.Second))
		// Pad the chain so that a write takes more than one syscall.
		v.ChainPEM = append(v.ChainPEM, bytes.Repeat(v.ChainPEM, 200)...)
		versions = append(versions, v)
		valid[string(v.CertPEM)+string(v.ChainPEM)] = true
		valid[string(v.KeyPEM)] = true
	}
	if _, err := f.Deliver(t.Context(), versions[0]); err != nil {
		t.Fatal(err)
	}
	var (
		stop  atomic.Bool
		reads atomic.Int64
		bad   atomic.Value
		wg    sync.WaitGroup
	)
	for _, name := range []string{files.FullchainFile, files.KeyFile} {
		wg.Go(func() {
			for !stop.Load() {
				data, err := os.ReadFile(filepath.Join(dir, "atomic", name))
				if err != nil {
					bad.Store("reading " + name + ": " + err.Error())
					return
				}
				if !valid[string(data)] {
					bad.Store(fmt.Sprintf("%s held a partial or unknown file of %d bytes", name, len(data)))
					return
				}
				reads.Add(1)
			}
		})
	}
	for _, v := range versions[1:] {
		if _, err := f.Deliver(t.Context(), v); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if msg := bad.Load(); msg != nil {
		t.Fatal(msg)
	}
	if reads.Load() == 0 {
		t.Fatal("the readers never read")
	}
}

func TestReloadCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(t.TempDir(), "reloads")
	// Fails while the file "broken" exists, else appends what it was told.
	cmd := `if [ -e "` + dir + `/broken" ]; then echo "nginx: [emerg] bad config" >&2; exit 3; fi; ` +
		`echo "$CERTKEEPER_CERTIFICATE_NAME $CERTKEEPER_VERSION_ID $(pwd)" >> ` + log + `; echo reloaded`
	f := newFiles(t, files.Config{Dir: dir, ReloadCommand: cmd})
	ctx := t.Context()
	v1 := vaulttest.NewVersion(t, "web", time.Now().Add(-time.Hour))

	r, err := f.Deliver(ctx, v1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Command == nil || r.Command.ExitCode != 0 || r.Command.Output != "reloaded\n" || r.Command.Command != cmd {
		t.Errorf("receipt command = %+v, want exit 0 and output %q", r.Command, "reloaded\n")
	}
	if got, want := readFile(t, log), "web "+v1.ID+" "+filepath.Join(dir, "web")+"\n"; got != want {
		t.Errorf("the command saw %q, want %q", got, want)
	}

	// Delivering the same version again runs nothing.
	if r, err := f.Deliver(ctx, v1); err != nil || r.Changed || r.Command != nil {
		t.Errorf("Deliver(v1) again = %+v, %v; want unchanged and no command", r, err)
	}

	// A failing command fails the delivery, with its output and exit code;
	// the files are in place.
	if err := os.WriteFile(filepath.Join(dir, "broken"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	v2 := vaulttest.NewVersion(t, "web", time.Now().Add(-30*time.Minute))
	r, err = f.Deliver(ctx, v2)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Deliver(v2) with a failing command = %v, want exit status 3", err)
	}
	if r.Command == nil || r.Command.ExitCode != 3 || r.Command.Output != "nginx: [emerg] bad config\n" {
		t.Errorf("receipt command = %+v, want exit 3 with nginx's words", r.Command)
	}
	if got := readFile(t, filepath.Join(dir, "web", files.CertFile)); got != string(v2.CertPEM) {
		t.Error("cert.pem is not v2 after the failed reload")
	}

	// Retried once fixed: the files are unchanged but the command runs.
	if err := os.Remove(filepath.Join(dir, "broken")); err != nil {
		t.Fatal(err)
	}
	r, err = f.Deliver(ctx, v2)
	if err != nil || r.Command == nil || r.Command.ExitCode != 0 {
		t.Fatalf("retry of v2 = %+v, %v; want the command run with exit 0", r, err)
	}
	if got := strings.Count(readFile(t, log), "\n"); got != 2 {
		t.Errorf("the command succeeded %d times, want 2", got)
	}
	// And after that success, not again.
	if r, err := f.Deliver(ctx, v2); err != nil || r.Command != nil {
		t.Errorf("Deliver(v2) once more = %+v, %v; want no command", r, err)
	}
}

func TestReloadTimeout(t *testing.T) {
	t.Parallel()
	// The timeout leaves the shell time to start and echo even on a busy
	// machine (200 ms did not, once, under the full suite).
	f := newFiles(t, files.Config{ReloadCommand: "echo started; sleep 30", ReloadTimeout: 2 * time.Second})
	r, err := f.Deliver(t.Context(), vaulttest.NewVersion(t, "slow", time.Now().Add(-time.Hour)))
	if err == nil || !strings.Contains(err.Error(), "no exit within") {
		t.Fatalf("Deliver with a hanging command = %v, want a timeout", err)
	}
	if r.Command == nil || r.Command.Output != "started\n" {
		t.Errorf("receipt command = %+v, want the output so far", r.Command)
	}
}

func TestNewRejectsUnknownOwner(t *testing.T) {
	t.Parallel()
	for _, cfg := range []files.Config{
		{Dir: t.TempDir(), Owner: "no-such-user-certkeeper"},
		{Dir: t.TempDir(), Group: "no-such-group-certkeeper"},
		{},
	} {
		if _, err := files.New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(data)
}
