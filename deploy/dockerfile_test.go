package deploy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks the Dockerfile's promises — the Go of go.mod, a
// static binary, a distroless final image, a non-root user — and checks
// that the binary its build stage makes (TestMain) is static and runs. (No
// container engine runs here; the image itself is not built.)
func TestDockerfile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(raw)
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The image builds with the toolchain go.mod names (its toolchain
	// directive, else its go directive).
	goVersion := regexp.MustCompile(`(?m)^toolchain go(\S+)$`).FindStringSubmatch(string(gomod))
	if goVersion == nil {
		goVersion = regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(string(gomod))
	}
	argVersion := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)$`).FindStringSubmatch(dockerfile)
	if goVersion == nil || argVersion == nil || goVersion[1] != argVersion[1] {
		t.Errorf("Dockerfile GO_VERSION %v, go.mod toolchain %v: want the same", argVersion, goVersion)
	}
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(dockerfile, -1)
	if len(froms) != 2 || !strings.HasPrefix(froms[0][1], "golang:${GO_VERSION}") ||
		froms[1][1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("stages %v, want a golang build stage and distroless static nonroot", froms)
	}
	for _, want := range []string{
		"CGO_ENABLED=0",
		"\nUSER 65532:65532\n",
		`ENTRYPOINT ["/usr/local/bin/certkeeper"]`,
		`CMD ["serve"]`,
		"\nEXPOSE 8080\n",
	} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if !regexp.MustCompile(`CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -X main.version=\$\{VERSION\}"`).MatchString(dockerfile) {
		t.Error("the Dockerfile's go build is not the one TestMain runs")
	}

	// TestMain built certkeeperBin with the build stage's command.
	bin := certkeeperBin
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (%s): it would not run on distroless/static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %v", libs)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "certkeeper docker-test" {
		t.Errorf("certkeeper version: %v: %q", err, out)
	}
}
