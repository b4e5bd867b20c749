package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

// certkeeperBin is the binary under test, built by TestMain.
var certkeeperBin string

// TestMain builds cmd/certkeeper once (with -race when the tests run with
// it), runs the tests, and stops the PostgreSQL cluster they may have started.
func TestMain(m *testing.M) {
	code := run(m)
	testenv.StopPostgres()
	os.Exit(code)
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "certkeeper-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: creating build directory: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildBinary(dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	code := m.Run()
	fmt.Println(secretsScanReport())
	return code
}

func buildBinary(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("finding the module root: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("finding the module root: not inside a module")
	}
	certkeeperBin = filepath.Join(dir, "certkeeper")
	args := []string{"build", "-o", certkeeperBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/certkeeper")
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building certkeeper: %w\n%s", err, out)
	}
	return nil
}
