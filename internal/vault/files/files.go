// Package files holds the files destination: each certificate as a
// directory <dir>/<name>/ of cert.pem, chain.pem, fullchain.pem, privkey.pem
// and optionally cert.pfx, every file replaced atomically (a temporary file
// and a rename), with configured owner, group and modes, and a reload
// command run after a change.
package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/certkeeper/certkeeper/internal/secret"
	"github.com/certkeeper/certkeeper/internal/vault"
)

// The file names inside a certificate's directory.
const (
	CertFile      = "cert.pem"
	ChainFile     = "chain.pem"
	FullchainFile = "fullchain.pem"
	KeyFile       = "privkey.pem"
	PFXFile       = "cert.pfx"
	// lockFile serialises deliveries to one directory, across processes.
	lockFile = ".lock"
	// pendingFile exists while a changed directory's reload command has not
	// yet succeeded, so that a retried delivery runs it again.
	pendingFile = ".reload-pending"
)

// maxOutput is how much of a reload command's output is kept.
const maxOutput = 8 << 10

// Config configures a files destination.
type Config struct {
	// Dir is the directory that holds one directory per certificate.
	Dir string
	// Owner and Group own the files and the certificate's directory: a name
	// or a numeric id; empty leaves the process's own.
	Owner, Group string
	// Mode applies to cert.pem, chain.pem and fullchain.pem (default 0644);
	// KeyMode to privkey.pem and cert.pfx (default 0600); DirMode to the
	// certificate's directory (default 0750).
	Mode, KeyMode, DirMode fs.FileMode
	// PFX also writes cert.pfx, protected by PFXPassword.
	PFX         bool
	PFXPassword secret.String
	// ReloadCommand runs with /bin/sh -c after the files changed, in the
	// certificate's directory, with CERTKEEPER_CERTIFICATE_NAME,
	// CERTKEEPER_CERTIFICATE_DIR and CERTKEEPER_VERSION_ID set. A non-zero
	// exit fails the delivery (which is retried, running it again).
	ReloadCommand string
	// ReloadTimeout bounds the command; default one minute.
	ReloadTimeout time.Duration
	Logger        *slog.Logger
}

// Files is a files destination. It is safe for concurrent use, also by
// several processes on one directory tree.
type Files struct {
	cfg      Config
	uid, gid int
	logger   *slog.Logger
}

var _ vault.Destination = (*Files)(nil)

// New returns a files destination, resolving the owner and group.
func New(cfg Config) (*Files, error) {
	if cfg.Dir == "" {
		return nil, errors.New("files destination: dir is required")
	}
	if cfg.Mode == 0 {
		cfg.Mode = 0o644
	}
	if cfg.KeyMode == 0 {
		cfg.KeyMode = 0o600
	}
	if cfg.DirMode == 0 {
		cfg.DirMode = 0o750
	}
	if cfg.ReloadTimeout <= 0 {
		cfg.ReloadTimeout = time.Minute
	}
	f := &Files{cfg: cfg, uid: -1, gid: -1, logger: cfg.Logger}
	if f.logger == nil {
		f.logger = slog.New(slog.DiscardHandler)
	}
	var err error
	if cfg.Owner != "" {
		if f.uid, err = LookupUser(cfg.Owner); err != nil {
			return nil, err
		}
	}
	if cfg.Group != "" {
		if f.gid, err = LookupGroup(cfg.Group); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// LookupUser returns the uid of a user name or numeric id.
func LookupUser(name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil && id >= 0 {
		return id, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, fmt.Errorf("looking up owner %q: %w", name, err)
	}
	return strconv.Atoi(u.Uid)
}

// LookupGroup returns the gid of a group name or numeric id.
func LookupGroup(name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil && id >= 0 {
		return id, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("looking up group %q: %w", name, err)
	}
	return strconv.Atoi(g.Gid)
}

// Dir returns the directory of the named certificate.
func (f *Files) Dir(name string) string { return filepath.Join(f.cfg.Dir, name) }

// Deliver implements vault.Destination. The files are replaced one by one,
// each atomically, under a lock on the directory; the reload command runs
// once they are all in place. Its result is in the receipt also when it
// failed.
func (f *Files) Deliver(ctx context.Context, v vault.Version) (vault.Receipt, error) {
	dir := f.Dir(v.Name)
	receipt := vault.Receipt{Location: dir}
	if err := f.mkdir(dir); err != nil {
		return receipt, err
	}
	unlock, err := lock(ctx, filepath.Join(dir, lockFile))
	if err != nil {
		return receipt, err
	}
	defer unlock()

	cur, err := f.Current(ctx, v.Name)
	switch {
	case err == nil && sameVersion(cur, v) && f.pfxPresent(dir):
		if _, err := os.Stat(filepath.Join(dir, pendingFile)); err != nil {
			return receipt, nil
		}
		// Written by an earlier attempt whose reload command failed.
	case err == nil && cur.NotBefore.After(v.NotBefore):
		return receipt, vault.ErrSuperseded
	case err != nil && !errors.Is(err, vault.ErrNotFound):
		return receipt, err
	default:
		if err := f.write(dir, v); err != nil {
			return receipt, err
		}
	}
	receipt.Changed = true
	if f.cfg.ReloadCommand == "" {
		return receipt, nil
	}
	result, err := f.reload(ctx, dir, v)
	receipt.Command = &result
	if err != nil {
		return receipt, err
	}
	if err := os.Remove(filepath.Join(dir, pendingFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return receipt, fmt.Errorf("removing the reload marker in %s: %w", dir, err)
	}
	return receipt, nil
}

func sameVersion(cur, v vault.Version) bool {
	return bytes.Equal(cur.CertPEM, v.CertPEM) && bytes.Equal(cur.ChainPEM, v.ChainPEM) &&
		bytes.Equal(cur.KeyPEM, v.KeyPEM)
}

func (f *Files) pfxPresent(dir string) bool {
	if !f.cfg.PFX {
		return true
	}
	_, err := os.Stat(filepath.Join(dir, PFXFile))
	return err == nil
}

func (f *Files) mkdir(dir string) error {
	if err := os.MkdirAll(dir, f.cfg.DirMode); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, f.cfg.DirMode); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", dir, err)
	}
	if f.uid >= 0 || f.gid >= 0 {
		if err := os.Chown(dir, f.uid, f.gid); err != nil {
			return fmt.Errorf("setting the owner of %s: %w", dir, err)
		}
	}
	return nil
}

// write replaces every file of v in dir. The reload marker goes first, so
// that a crash between the files and the command still runs the command on
// the next attempt.
func (f *Files) write(dir string, v vault.Version) error {
	type file struct {
		name string
		data []byte
		mode fs.FileMode
	}
	files := []file{
		{pendingFile, nil, 0o600},
		{KeyFile, v.KeyPEM, f.cfg.KeyMode},
		{CertFile, v.CertPEM, f.cfg.Mode},
		{ChainFile, v.ChainPEM, f.cfg.Mode},
		{FullchainFile, append(append([]byte{}, v.CertPEM...), v.ChainPEM...), f.cfg.Mode},
	}
	if f.cfg.ReloadCommand == "" {
		files = files[1:]
	}
	if f.cfg.PFX {
		pfx, err := v.PFX(f.cfg.PFXPassword.Reveal())
		if err != nil {
			return err
		}
		files = append(files, file{PFXFile, pfx, f.cfg.KeyMode})
	}
	for _, fl := range files {
		if err := f.writeFile(dir, fl.name, fl.data, fl.mode); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// writeFile writes data to a temporary file in dir with its final mode and
// owner, flushes it, and renames it over name: a reader sees the old file
// or the new one, never part of one.
func (f *Files) writeFile(dir, name string, data []byte, mode fs.FileMode) error {
	path := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", path, err)
	}
	if f.uid >= 0 || f.gid >= 0 {
		if err := tmp.Chown(f.uid, f.gid); err != nil {
			return fmt.Errorf("setting the owner of %s: %w", path, err)
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("flushing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	ok = true
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("flushing %s: %w", dir, err)
	}
	return nil
}

// reload runs the reload command and reports its exit code and output.
func (f *Files) reload(ctx context.Context, dir string, v vault.Version) (vault.CommandResult, error) {
	res := vault.CommandResult{Command: f.cfg.ReloadCommand, ExitCode: -1}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ReloadTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", f.cfg.ReloadCommand)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CERTKEEPER_CERTIFICATE_NAME="+v.Name,
		"CERTKEEPER_CERTIFICATE_DIR="+dir,
		"CERTKEEPER_VERSION_ID="+v.ID)
	out := &limitedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res.Duration = time.Since(start)
	res.Output = out.String()
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	f.logger.InfoContext(ctx, "reload command ran", "certificate", v.Name, "command", f.cfg.ReloadCommand,
		"exit_code", res.ExitCode, "duration", res.Duration)
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return res, fmt.Errorf("running reload command %q: no exit within %s", f.cfg.ReloadCommand, f.cfg.ReloadTimeout)
	case err != nil && res.ExitCode > 0:
		return res, fmt.Errorf("running reload command %q: exit status %d", f.cfg.ReloadCommand, res.ExitCode)
	case err != nil:
		return res, fmt.Errorf("running reload command %q: %w", f.cfg.ReloadCommand, err)
	}
	return res, nil
}

// Current implements vault.Destination. The version id is not kept in the
// files; NotBefore and NotAfter come from cert.pem.
func (f *Files) Current(_ context.Context, name string) (vault.Version, error) {
	dir := f.Dir(name)
	cert, err := os.ReadFile(filepath.Join(dir, CertFile))
	if errors.Is(err, fs.ErrNotExist) {
		return vault.Version{}, vault.ErrNotFound
	}
	if err != nil {
		return vault.Version{}, fmt.Errorf("reading %s: %w", filepath.Join(dir, CertFile), err)
	}
	v := vault.Version{Name: name, CertPEM: cert}
	if v.ChainPEM, err = os.ReadFile(filepath.Join(dir, ChainFile)); err != nil {
		return vault.Version{}, fmt.Errorf("reading %s: %w", filepath.Join(dir, ChainFile), err)
	}
	if v.KeyPEM, err = os.ReadFile(filepath.Join(dir, KeyFile)); err != nil {
		return vault.Version{}, fmt.Errorf("reading %s: %w", filepath.Join(dir, KeyFile), err)
	}
	leaf, err := v.Leaf()
	if err != nil {
		return vault.Version{}, fmt.Errorf("reading %s: %w", filepath.Join(dir, CertFile), err)
	}
	v.NotBefore, v.NotAfter = leaf.NotBefore, leaf.NotAfter
	return v, nil
}

// lock takes an exclusive flock on path, waiting until ctx is done.
func lock(ctx context.Context, path string) (func(), error) {
	fd, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(fd.Fd()), syscall.LOCK_UN)
				fd.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			fd.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			fd.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.buf.Write(p[:max(room, 0)])
		b.truncated = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) String() string {
	if b.truncated {
		return b.buf.String() + "\n[output truncated]"
	}
	return b.buf.String()
}
