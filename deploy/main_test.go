package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// certkeeperBin is certkeeper built as the Dockerfile's build stage builds
// it; the tests check the binary and have it validate the configurations
// the manifests carry.
var certkeeperBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "certkeeper-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	certkeeperBin = filepath.Join(dir, "certkeeper")
	// The Dockerfile's go build, from the repository root.
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -X main.version=docker-test", "-o", certkeeperBin, "./cmd/certkeeper")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building certkeeper as the Dockerfile does: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
