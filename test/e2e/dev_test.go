package e2e

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDevMode runs `certkeeper dev` as a person would, reads what it prints,
// and drives it with the CLI of the same binary: issue --wait, get, verify
// the chain against the printed root, renew, revoke, list.
func TestDevMode(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dataDir := t.TempDir()
	addr := freeAddr(t)
	cmd := exec.Command(certkeeperBin, "dev", "--listen", addr, "--data-dir", dataDir)
	cmd.Env = certkeeperEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("certkeeper dev did not exit cleanly on SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("certkeeper dev did not stop within 30 s of SIGTERM")
		}
		if strings.Contains(stderr.String(), "DATA RACE") {
			t.Errorf("data race in certkeeper dev:\n%s", stderr.String())
		}
	})

	banner := readBanner(t, stdout)
	t.Logf("dev stack printed its banner %v after start", time.Since(start))
	go io.Copy(io.Discard, stdout) //nolint:errcheck // drain the rest
	key := field(t, banner, `API key\s+(\S+)`)
	root := field(t, banner, `CA root\s+(\S+)`)
	if url := field(t, banner, `API\s+(http://\S+)`); url != "http://"+addr {
		t.Fatalf("banner API URL %q, want http://%s", url, addr)
	}
	for _, want := range []string{"certkeeper issue --wait www.example.test", "curl -i -X POST http://" + addr + "/api/certificate"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}

	cli := func(args ...string) (string, error) {
		c := exec.CommandContext(ctx, certkeeperBin, args...)
		c.Env = append(certkeeperEnv(), "CERTKEEPER_URL=http://"+addr, "CERTKEEPER_API_KEY="+key)
		var out, errOut bytes.Buffer
		c.Stdout, c.Stderr = &out, &errOut
		err := c.Run()
		if err != nil {
			return out.String(), &cliError{args: args, err: err, stderr: errOut.String()}
		}
		return out.String(), nil
	}

	if _, err := cli("issue", "--wait", "www.example.test", "*.www.example.test"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "www")
	if _, err := cli("get", "www-example-test", "--out", out); err != nil {
		t.Fatal(err)
	}
	first := verifyFiles(t, out, root, []string{"www.example.test", "*.www.example.test"})

	if _, err := cli("renew", "www-example-test", "--wait"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli("get", "www-example-test", "--out", out); err != nil {
		t.Fatal(err)
	}
	second := verifyFiles(t, out, root, []string{"www.example.test", "*.www.example.test"})
	if first.SerialNumber.Cmp(second.SerialNumber) == 0 {
		t.Error("renewal returned the same certificate")
	}

	if _, err := cli("revoke", "www-example-test", "--reason", "superseded"); err != nil {
		t.Fatal(err)
	}
	listed, err := cli("list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var items []struct {
		Name         string `json:"name"`
		SerialNumber string `json:"serialNumber"`
		Revoked      bool   `json:"revoked"`
	}
	if err := json.Unmarshal([]byte(listed), &items); err != nil {
		t.Fatalf("list --json: %v\n%s", err, listed)
	}
	if len(items) != 1 || !items[0].Revoked || items[0].SerialNumber != second.SerialNumber.Text(16) {
		t.Errorf("list after revoke = %+v; want the renewed serial %x, revoked", items, second.SerialNumber)
	}

	// A failure is one clear line and a non-zero exit.
	_, err = cli("issue", "--wait", "www.elsewhere.test")
	ce, ok := err.(*cliError)
	if !ok || !strings.Contains(ce.stderr, "No configured DNS zone contains www.elsewhere.test") ||
		strings.Count(strings.TrimSpace(ce.stderr), "\n") != 0 {
		t.Errorf("issuing outside the dev zone: %v", err)
	}
}

type cliError struct {
	args   []string
	err    error
	stderr string
}

func (e *cliError) Error() string {
	return "certkeeper " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.stderr
}

// readBanner reads stdout until the banner's last line.
func readBanner(t *testing.T, r io.Reader) string {
	t.Helper()
	var b strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "Stop with Ctrl-C") {
			return b.String()
		}
	}
	t.Fatalf("certkeeper dev ended before printing its banner:\n%s", b.String())
	return ""
}

func field(t *testing.T, banner, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("banner has no match for %q:\n%s", pattern, banner)
	}
	return m[1]
}

// verifyFiles checks what `certkeeper get` wrote: the key matches the leaf,
// fullchain is cert + chain, and the leaf verifies to the printed root.
func verifyFiles(t *testing.T, dir, rootPath string, names []string) *x509.Certificate {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	certPEM, chainPEM, fullPEM, keyPEM := read("cert.pem"), read("chain.pem"), read("fullchain.pem"), read("privkey.pem")
	if !bytes.Equal(fullPEM, append(append([]byte{}, certPEM...), chainPEM...)) {
		t.Error("fullchain.pem is not cert.pem followed by chain.pem")
	}
	if info, _ := os.Stat(filepath.Join(dir, "privkey.pem")); info.Mode().Perm() != 0o600 {
		t.Errorf("privkey.pem mode %v, want 0600", info.Mode().Perm())
	}
	block, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	keyBlock, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		t.Fatalf("privkey.pem: %v", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		t.Fatalf("privkey.pem holds a %T, not a signing key", key)
	}
	if !signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Error("privkey.pem does not match cert.pem")
	}
	roots := x509.NewCertPool()
	rootPEM, err := os.ReadFile(rootPath)
	if err != nil || !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("reading the printed CA root %s: %v", rootPath, err)
	}
	inter := x509.NewCertPool()
	inter.AppendCertsFromPEM(chainPEM)
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: strings.Replace(n, "*", "x", 1)}); err != nil {
			t.Errorf("leaf does not verify for %s against the printed root: %v", n, err)
		}
	}
	return leaf
}

// lockedBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
