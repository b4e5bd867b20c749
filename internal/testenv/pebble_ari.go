package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// SetRenewalInfo makes Pebble answer renewalInfo requests for the
// certificate (PEM) with a suggested window from start to end, through its
// management interface (POST /set-renewal-info/, which takes the certificate
// and the whole ARI response body as a string).
func (p *Pebble) SetRenewalInfo(ctx context.Context, certPEM []byte, start, end time.Time) error {
	window := map[string]any{"suggestedWindow": map[string]string{
		"start": start.UTC().Format(time.RFC3339), "end": end.UTC().Format(time.RFC3339),
	}}
	ari, err := json.Marshal(window)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]string{"certificate": string(certPEM), "ariResponse": string(ari)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.ManagementURL+"/set-renewal-info/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("setting renewal info: %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("setting renewal info: status %d: %s", resp.StatusCode, out)
	}
	return nil
}

// Log returns what Pebble wrote to its output so far.
func (p *Pebble) Log() string {
	out, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	return string(out)
}
