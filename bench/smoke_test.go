package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the harness in smoke mode: every client obtains one
// certificate from the same Pebble through the same BIND, certkeeper with a
// few certificates seeded into its database first. It checks only that each
// succeeded and that certkeeper lists the seeded certificates; it makes no
// timing claim.
func TestSmoke(t *testing.T) {
	if _, err := exec.LookPath("certbot"); err != nil && os.Getenv("CI") == "" {
		t.Skip("certbot is not installed (apt-get install certbot python3-certbot-dns-rfc2136); CI installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Chdir("..") // the harness builds ./cmd/certkeeper from the module root
	report, err := run(ctx, options{smoke: true, clients: "certbot,lego,issuer,certkeeper", reps: 1, concurrent: 1, seed: 5, floorConcurrency: 20})
	if err != nil {
		t.Fatalf("smoke run: %v", err)
	}
	if !strings.Contains(report, "every client (certbot,lego,issuer,certkeeper) obtained one certificate") {
		t.Errorf("report does not say every client succeeded:\n%s", report)
	}
	// The 5 seeded certificates and the warm-up's are listed by the API:
	// seeding wrote what the service reads.
	if !strings.Contains(report, "certkeeper lists 6 certificates (5 seeded)") {
		t.Errorf("report does not list the seeded certificates:\n%s", report)
	}
}
