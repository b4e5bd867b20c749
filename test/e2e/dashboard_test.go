package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

var updateScreenshot = flag.Bool("update-screenshot", false,
	"TestDashboard writes its certificate list screenshot to docs/screenshots/certificates.png")

// devProcess is a running `certkeeper dev`.
type devProcess struct {
	baseURL, key string
	stderr       *lockedBuffer
	client       *http.Client
}

// startDev runs `certkeeper dev` on a free port and reads its banner; it is
// stopped with SIGTERM in t.Cleanup.
func startDev(t *testing.T) *devProcess {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(certkeeperBin, "dev", "--listen", addr, "--data-dir", t.TempDir())
	cmd.Env = certkeeperEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
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
				t.Errorf("certkeeper dev did not exit cleanly on SIGTERM: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("certkeeper dev did not stop within 30 s of SIGTERM")
		}
		if strings.Contains(stderr.String(), "DATA RACE") || t.Failed() {
			t.Logf("certkeeper dev output:\n%s", stderr.String())
		}
		if strings.Contains(stderr.String(), "DATA RACE") {
			t.Errorf("data race in certkeeper dev")
		}
	})
	banner := readBanner(t, stdout)
	go io.Copy(io.Discard, stdout) //nolint:errcheck // drain the rest
	dashboard := field(t, banner, `Dashboard\s+(http://\S+)`)
	if dashboard != "http://"+addr+"/" {
		t.Errorf("banner Dashboard URL %q, want http://%s/", dashboard, addr)
	}
	return &devProcess{baseURL: "http://" + addr, key: field(t, banner, `API key\s+(\S+)`), stderr: stderr,
		client: &http.Client{Timeout: 30 * time.Second}}
}

// TestDashboard drives the dashboard of `certkeeper dev` in headless
// Chromium as a person would: sign in, add certificates (after the form
// refused bad input with the API's messages) and watch their operations
// succeed, filter and sort the list, renew, download, revoke with a reason,
// and see the list follow a change made elsewhere. Each main page is
// screenshotted into the test's artifact directory.
func TestDashboard(t *testing.T) {
	t.Parallel()
	start := time.Now()
	dev := startDev(t)
	b := startBrowser(t)
	base := dev.baseURL

	// Signed out, every page sends the person to the sign-in page.
	b.navigate(base + "/certificates/anything")
	b.waitPath("/signin?next=%2Fcertificates%2Fanything")
	b.screenshot("01-sign-in")
	b.typeText("#api-key", "ck_wrong")
	b.click("#signin-form button[type=submit]")
	b.waitText("#api-key-error", "That API key was not accepted.")
	if got := eval[int](b, `sessionStorage.length + localStorage.length`); got != 0 {
		t.Errorf("a refused key left %d storage entries", got)
	}
	b.navigate(base + "/")
	b.waitPath("/signin?next=%2F")
	b.signIn(dev.key, "/")
	b.waitText("#groups", "No certificates yet.")
	// The key is kept for this tab only, never in a cookie or local storage.
	if got := eval[string](b, `JSON.parse(sessionStorage.getItem("certkeeper.credential")).secret`); got != dev.key {
		t.Errorf("sessionStorage holds %q, want the key", got)
	}
	if got := eval[string](b, `document.cookie + localStorage.length`); got != "0" {
		t.Errorf("cookies and localStorage: %q, want none", got)
	}
	b.waitText("#who", "Signed in as dev")

	// The form refuses bad input: first with checks made before sending,
	// then with the API's own answer.
	b.click(`nav a[href="/new"]`)
	b.waitPath("/new")
	b.waitFor("zones", `() => document.querySelectorAll("#zone option").length > 0`)
	b.click("#submit")
	b.waitText("#dnsnames-error", "The DnsNames is required.")
	if !b.visible("#error-summary") || eval[string](b, `document.activeElement.id`) != "error-summary" {
		t.Error("the error summary is not shown and focused")
	}
	b.typeText("#record", "bad_label")
	b.click("#add-name")
	b.typeText("#certificate-name", "not valid!")
	b.click("#submit")
	b.waitText("#certificate-name-error", "The field CertificateName must match the regular expression '^[0-9a-zA-Z-]+$'.")
	b.clear("#certificate-name")
	b.click("#submit")
	b.waitText("#dnsnames-error", "The DnsNames entry 'bad_label.example.test' is not a valid DNS name")
	b.waitText("#error-list", "is not a valid DNS name")
	b.screenshot("02-add-validation")
	checkContrast(t, b, "the form with errors")
	b.click(`button[aria-label="Remove bad_label.example.test"]`)

	// A certificate with an IDN name and an EC key, followed to success.
	b.typeText("#record", "www")
	b.click("#add-name")
	b.typeText("#record", "bücher")
	b.waitText("#record-preview", "Will be requested as xn--bcher-kva.example.test.")
	b.do("adding the IDN name", chromedp.KeyEvent("\r"))
	b.waitText("#names", "xn--bcher-kva.example.test")
	b.choose("#key-type", "EC")
	b.choose("#key-curve", "P-384")
	if b.visible("#key-size") {
		t.Error("the RSA key size is shown for an EC key")
	}
	b.screenshot("03-add-filled")
	b.click("#submit")
	b.waitFor("the operation to succeed", `() => !!document.querySelector('#live-operation [data-status="succeeded"]')`)
	b.waitText("#live-operation .op-status", "Issue of www-example-test succeeded.")
	for _, step := range []string{"ordering", "presenting DNS records", "validating", "finalizing", "storing"} {
		if b.count(`#live-operation li.step.done[data-step="`+step+`"]`) != 1 {
			t.Errorf("the finished operation does not show step %q as done", step)
		}
	}
	b.screenshot("04-add-succeeded")

	// A short-lived certificate, so the list has one that expires soon.
	b.typeText("#record", "api")
	b.click("#add-name")
	b.click("details.advanced summary")
	b.typeText("#profile", "shortlived")
	b.click("#submit")
	b.waitText("#live-operation .op-status", "Issue of api-example-test succeeded.")

	// The list: overview, colours, filter and sort.
	b.click(`nav a[href="/"]`)
	b.waitFor("two rows", `() => document.querySelectorAll("#group-managed tbody tr[data-name]").length === 2`)
	for sel, want := range map[string]string{"#stat-total": "2", "#stat-7": "1", "#stat-30": "1", "#stat-failed": "0"} {
		if got := b.text(sel); got != want {
			t.Errorf("overview %s = %q, want %q", sel, got, want)
		}
	}
	if got := b.count("#chart svg rect.bar"); got != 13 {
		t.Errorf("the expiry chart has %d weekly bars, want 13", got)
	}
	if got := b.text(`tr[data-name="api-example-test"] td.expiry .badge`); !strings.HasPrefix(got, "in 5 day") {
		t.Errorf("short-lived certificate expiry badge %q, want in 5 days", got)
	}
	if b.count(`tr[data-name="api-example-test"] .badge.critical`) != 1 || b.count(`tr[data-name="www-example-test"] .badge.ok`) != 1 {
		t.Error("expiry badges are not red for 5 days and green for 89 days")
	}
	if got := b.text(`tr[data-name="www-example-test"]`); !strings.Contains(got, "EC P-384") || !strings.Contains(got, "example.test") ||
		!strings.Contains(got, "xn--bcher-kva.example.test") || !strings.Contains(got, "dev") {
		t.Errorf("www-example-test row = %q; want key EC P-384, zone, names and provider", got)
	}
	b.typeText("#filter-text", "bcher")
	b.waitText("#list-summary", "Showing 1 of 2 certificates.")
	if b.count("tbody tr[data-name]") != 1 || b.count(`tr[data-name="www-example-test"]`) != 1 {
		t.Error("the name filter does not keep only www-example-test")
	}
	b.clear("#filter-text")
	b.choose("#filter-expiry", "7")
	b.waitText("#list-summary", "Showing 1 of 2 certificates.")
	if b.count(`tr[data-name="api-example-test"]`) != 1 {
		t.Error("the expiry filter does not keep only api-example-test")
	}
	b.choose("#filter-expiry", "")
	b.click(`#group-managed th[data-sort="expiry"] button`)
	b.waitFor("ascending expiry", `() => document.querySelector('#group-managed th[data-sort="expiry"]').getAttribute("aria-sort") === "ascending"`)
	if got := eval[string](b, `document.querySelector("#group-managed tbody tr").dataset.name`); got != "api-example-test" {
		t.Errorf("first row by ascending expiry = %q", got)
	}
	b.click(`#group-managed th[data-sort="expiry"] button`)
	b.waitFor("descending expiry", `() => document.querySelector("#group-managed tbody tr").dataset.name === "www-example-test"`)
	if got := b.location(); !strings.HasSuffix(got, "/?sort=expiry&dir=desc") {
		t.Errorf("the sort is not kept in the URL: %s", got)
	}
	b.screenshot("05-certificates")

	// On a phone the list fits the screen: no sideways scrolling.
	b.do("emulating a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)), chromedp.Reload())
	b.waitFor("rows on the phone", `() => document.querySelectorAll("tbody tr[data-name]").length === 2`)
	if w := eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("on a 390 px phone the page is %d px wide", w[0])
	}
	b.screenshot("06-certificates-phone")
	b.do("back to a desktop", chromedp.EmulateReset(), chromedp.EmulateViewport(1280, 900))

	// The certificate page: versions, history, download, renew, revoke.
	b.navigate(base + "/")
	b.click(`a[href="/certificates/www-example-test"]`)
	b.waitPath("/certificates/www-example-test")
	b.waitFor("one version", `() => document.querySelectorAll("#versions tr").length === 1`)
	if got := b.text("#versions tr"); !strings.Contains(got, "Pebble") || !strings.Contains(got, "Current") {
		t.Errorf("version row %q lacks the Pebble issuer chain or the Current state", got)
	}
	if got := b.text("#history"); !strings.Contains(got, "Issue") || !strings.Contains(got, "Succeeded") {
		t.Errorf("history %q lacks the succeeded issue", got)
	}
	if got := b.text("#deliveries"); !strings.Contains(got, "built-in store") {
		t.Errorf("deliveries = %q", got)
	}
	b.click("#download-form button[type=submit]")
	pemFile := string(b.waitDownload("www-example-test.pem"))
	if !strings.Contains(pemFile, "-----BEGIN PRIVATE KEY-----") || strings.Count(pemFile, "-----BEGIN CERTIFICATE-----") < 2 {
		t.Errorf("downloaded PEM lacks the key or the chain:\n%s", pemFile)
	}
	b.click("#renew")
	b.waitText("#live-operation .op-status", "Renewal of www-example-test succeeded.")
	b.waitFor("two versions", `() => document.querySelectorAll("#versions tr").length === 2`)
	if got := b.text("#versions tr:nth-child(2)"); !strings.Contains(got, "Superseded") {
		t.Errorf("the first version after renewal = %q, want Superseded", got)
	}
	b.waitFor("two history rows", `() => document.querySelectorAll("#history tr").length === 2`)
	b.screenshot("07-certificate")
	checkContrast(t, b, "the certificate page")

	// Revoking asks first, naming the certificate; Escape backs out.
	b.click("#revoke")
	b.waitFor("the dialog", `() => document.getElementById("revoke-dialog").open`)
	if got := b.text("#revoke-dialog-title"); got != "Revoke www-example-test?" {
		t.Errorf("dialog title %q", got)
	}
	if got := eval[string](b, `document.getElementById("revoke-confirm").innerText`); got != "Revoke www-example-test" {
		t.Errorf("confirm button %q", got)
	}
	b.do("pressing Escape", chromedp.KeyEvent("\x1b"))
	b.waitFor("the dialog to close", `() => !document.getElementById("revoke-dialog").open`)
	if got := b.text(`#facts`); strings.Contains(got, "Revoked") {
		t.Fatal("Escape revoked the certificate")
	}
	b.click("#revoke")
	b.waitFor("the dialog", `() => document.getElementById("revoke-dialog").open`)
	b.choose("#revoke-reason", "keyCompromise")
	b.screenshot("08-revoke-dialog")
	b.click("#revoke-confirm")
	b.waitFor("the revoked state", `() => !document.getElementById("revoke-dialog").open && document.querySelector("#facts").textContent.includes("Revoked")`)
	if got := b.text("#versions tr"); !strings.Contains(got, "Revoked") {
		t.Errorf("the newest version row after revoking = %q", got)
	}
	if b.visible("#revoke") {
		t.Error("the revoke button is still offered for a revoked certificate")
	}
	if !strings.Contains(dev.stderr.String(), "certificate revoked") || !strings.Contains(dev.stderr.String(), "reason=1") {
		t.Error("certkeeper did not log the revocation with reason 1 (keyCompromise)")
	}

	// The list follows changes made elsewhere, without a reload.
	b.click(`nav a[href="/"]`)
	b.waitFor("the revoked badge", `() => !!document.querySelector('tr[data-name="www-example-test"] .badge.revoked')`)
	issueViaAPI(t, dev, map[string]any{"dnsNames": []string{"shop.example.test"}, "keyType": "RSA", "keySize": 3072})
	b.waitFor("the new row", `() => !!document.querySelector('tr[data-name="shop-example-test"]')`)
	b.waitText(`tr[data-name="shop-example-test"]`, "RSA 3072")
	b.waitText("#stat-total", "3")
	png := b.screenshot("09-certificates-updated")
	if *updateScreenshot {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", "certificates.png"), png, 0o644); err != nil {
			t.Errorf("writing docs screenshot: %v", err)
		}
	}

	// The sort works from the keyboard, and focus stays on the header.
	b.click("#filter-expiry")
	b.do("closing the select", chromedp.KeyEvent("\x1b"))
	b.do("tabbing to the first sort button", chromedp.KeyEvent("\t"))
	if got := eval[string](b, `document.activeElement.textContent`); !strings.HasPrefix(got, "Certificate") {
		t.Fatalf("Tab after the filters focused %q, want the Certificate sort button", got)
	}
	b.do("pressing Enter", chromedp.KeyEvent("\r"))
	b.waitFor("descending names", `() => document.querySelector('#group-managed th[data-sort="name"]').getAttribute("aria-sort") === "descending"`)
	if got := eval[string](b, `document.activeElement.dataset.focusKey || ""`); got != "managed-sort-name" {
		t.Errorf("after sorting, focus is on %q, want the sort button", got)
	}
	checkContrast(t, b, "the certificate list")
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatalf("emulating dark mode: %v", err)
	}
	checkContrast(t, b, "the certificate list in dark mode")
	b.screenshot("09-certificates-dark")
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatalf("ending dark mode: %v", err)
	}

	// Operations, newest first, each with its steps.
	b.click(`nav a[href="/operations"]`)
	b.waitFor("four operations", `() => document.querySelectorAll(".op-card").length === 4`)
	if got := b.text(".op-card"); !strings.Contains(got, "Issue of shop-example-test") || !strings.Contains(got, "Succeeded") {
		t.Errorf("the newest operation = %q", got)
	}
	b.screenshot("10-operations")
	b.click(".op-card .op-link")
	b.waitText("#op-title", "Issue of shop-example-test")
	b.waitFor("its steps", `() => document.querySelectorAll("#live-operation li.step.done").length >= 5`)
	b.screenshot("11-operation")

	b.signOut()
	if got := eval[int](b, `sessionStorage.length`); got != 0 {
		t.Errorf("signing out left %d sessionStorage entries", got)
	}
	b.navigate(base + "/")
	b.waitPath("/signin?next=%2F")
	t.Logf("dashboard test took %v", time.Since(start).Round(time.Millisecond))
}

// issueViaAPI issues a certificate through the API, as another client
// would, and waits for it.
func issueViaAPI(t *testing.T, dev *devProcess, req map[string]any) {
	t.Helper()
	body, _ := json.Marshal(req)
	do := func(method, url string, body []byte) *http.Response {
		r, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("X-Api-Key", dev.key)
		r.Header.Set("Content-Type", "application/json")
		resp, err := dev.client.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		resp.Body.Close()
		return resp
	}
	resp := do(http.MethodPost, dev.baseURL+"/api/certificate", body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("issuing via the API: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		switch do(http.MethodGet, loc, nil).StatusCode {
		case http.StatusAccepted:
			continue
		case http.StatusOK:
			return
		default:
			t.Fatalf("operation %s failed", loc)
		}
	}
	t.Fatalf("operation %s still running after 60 s", loc)
}

// TestDashboardRoles runs `certkeeper serve` with roles required, two DNS
// providers and three keys, and checks that the dashboard offers each key
// only what it may do, downloads a PFX with its one-time password, refuses
// names of two providers in one certificate, and revokes with the chosen
// reason at the CA.
func TestDashboardRoles(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	bind := testenv.StartBIND(t, testenv.BINDOptions{Zones: zones})
	pebble := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: bind.Addr, BlockedDomains: []string{refusedZone}})
	keys := map[string]string{"issuer": "ik-" + randomHex(16), "reader": "rk-" + randomHex(16), "keys": "kk-" + randomHex(16)}
	provider := func(name, zone string) map[string]any {
		return map[string]any{"name": name, "type": "rfc2136", "zones": []string{zone}, "nameserver": bind.Addr,
			"tsigKeyName": bind.TSIGKeyName, "tsigAlgorithm": bind.TSIGAlgorithm, "tsigSecret": bind.TSIGSecret}
	}
	dataDir := t.TempDir()
	srv := startServer(t, map[string]any{
		"dataDir": dataDir,
		"acme":    map[string]any{"endpoint": pebble.DirectoryURL, "caBundle": pebble.CABundle, "profile": "default"},
		"dns": map[string]any{"resolvers": []string{bind.Addr}, "propagationTimeout": "8s",
			"providers": []map[string]any{provider("Primary", zone), provider("Secondary", refusedZone)}},
		"auth": map[string]any{"requireRoles": true, "apiKeys": []map[string]any{
			{"name": "issuer", "key": keys["issuer"], "roles": []string{roleIssue, roleRevoke}},
			{"name": "reader", "key": keys["reader"], "roles": []string{}},
			{"name": "keys", "key": keys["keys"], "roles": []string{roleReadCertificate}},
		}},
		"log": map[string]any{"level": "info", "format": "text"},
	}, dataDir)
	loc := srv.accepted(t, srv.postJSON(ctx, t, "/api/certificate", keys["issuer"], map[string]any{"dnsNames": []string{"www." + zone}}))
	if r := srv.wait(ctx, t, loc, keys["issuer"]); r.Status != http.StatusOK {
		t.Fatalf("issuing www.%s: %s", zone, r)
	}
	const certPage = "/certificates/www-example-test"

	b := startBrowser(t)
	// A key without roles sees everything and may change nothing.
	b.navigate(srv.baseURL + certPage)
	b.waitPath("/signin?next=%2Fcertificates%2Fwww-example-test")
	b.signIn(keys["reader"], certPage)
	b.waitFor("the certificate", `() => document.querySelectorAll("#versions tr").length === 1`)
	for _, sel := range []string{"#renew", "#revoke", "#download-form"} {
		if b.visible(sel) {
			t.Errorf("%s is offered to a key without roles", sel)
		}
	}
	b.waitText("#not-allowed", "Your sign-in may not renew (role Acmebot.IssueCertificate), revoke (role Acmebot.RevokeCertificate) or download private keys (role Certkeeper.ReadCertificate).")
	b.screenshot("01-certificate-read-only")
	b.click(`nav a[href="/new"]`)
	b.waitPath("/new")
	b.waitFor("the refusal", `() => !document.getElementById("not-allowed").hidden && document.getElementById("new-form").hidden`)
	b.signOut()

	// A key that may read private keys downloads a PFX and its password.
	b.navigate(srv.baseURL + certPage)
	b.signIn(keys["keys"], certPage)
	b.waitFor("the download form", `() => !document.getElementById("download-form").hidden`)
	if b.visible("#renew") || b.visible("#revoke") {
		t.Error("renew or revoke is offered to a key that may only read private keys")
	}
	b.choose("#download-format", "pfx")
	b.click("#download-form button[type=submit]")
	b.waitFor("the PFX password", `() => document.getElementById("pfx-password-value").textContent.length > 10`)
	password := b.text("#pfx-password-value")
	key, leaf, _, err := pkcs12.DecodeChain(b.waitDownload("www-example-test.pfx"), password)
	if err != nil {
		t.Fatalf("the downloaded PFX does not open with the shown password: %v", err)
	}
	if leaf.DNSNames[0] != "www."+zone || key == nil {
		t.Errorf("the PFX holds %v", leaf.DNSNames)
	}
	b.screenshot("02-certificate-download")
	b.signOut()

	// The issuer may not mix providers in one certificate, and revokes with
	// a reason the CA records.
	b.navigate(srv.baseURL + "/new")
	b.signIn(keys["issuer"], "/new")
	b.waitFor("both providers' zones", `() => document.querySelectorAll("#zone optgroup").length === 2`)
	if got := eval[[]string](b, `[...document.querySelectorAll("#zone optgroup")].map((g) => g.label + ":" + g.textContent)`); len(got) != 2 ||
		got[0] != "Primary:"+zone || got[1] != "Secondary:"+refusedZone {
		t.Errorf("zone choices %q", got)
	}
	b.typeText("#record", "www")
	b.click("#add-name")
	b.waitText("#names", "www."+zone)
	b.choose("#zone", eval[string](b, `[...document.querySelectorAll("#zone option")].find((o) => o.textContent === "`+refusedZone+`").value`))
	b.typeText("#record", "www")
	b.click("#add-name")
	b.waitText("#dnsnames-error", "All DNS names of one certificate must be in zones of one DNS provider: www.example.test is in Primary's zone example.test, www.refused.test would be in Secondary's zone refused.test.")
	if got := b.count("#names li"); got != 1 {
		t.Errorf("%d names listed after the refusal, want 1", got)
	}
	b.screenshot("03-add-two-providers")

	// A failing issuance shows the step and the CA's own words, live and
	// on the operations page.
	b.click(`button[aria-label="Remove www.example.test"]`)
	b.click("#add-name")
	b.waitText("#names", "www."+refusedZone)
	b.click("#submit")
	b.waitFor("the failure", `() => !!document.querySelector('#live-operation [data-status="failed"] .op-failure')`)
	if got := b.text("#live-operation .op-failure"); !strings.Contains(got, "issuance is forbidden by policy") || !strings.Contains(got, "www."+refusedZone) {
		t.Errorf("failure detail %q, want Pebble's words naming the name", got)
	}
	if b.count("#live-operation li.step.failed") != 1 {
		t.Error("the failed step is not marked")
	}
	b.screenshot("04-add-failed")
	b.click(`nav a[href="/operations"]`)
	b.waitFor("the failed operation", `() => !!document.querySelector('.op-card [data-status="failed"] .op-failure')`)
	b.waitText(".op-card", "issuance is forbidden by policy")
	b.screenshot("05-operations-failed")

	b.navigate(srv.baseURL + certPage)
	b.waitFor("the revoke button", `() => !document.getElementById("revoke").hidden`)
	if b.visible("#download-form") {
		t.Error("the download is offered to a key without Certkeeper.ReadCertificate")
	}
	serial := b.text("#facts code")
	b.click("#revoke")
	b.waitFor("the dialog", `() => document.getElementById("revoke-dialog").open`)
	b.choose("#revoke-reason", "superseded")
	b.click("#revoke-confirm")
	b.waitFor("the revoked state", `() => document.querySelector("#facts").textContent.includes("Revoked")`)
	body, status, err := pebbleManage(ctx, pebble, "/cert-status-by-serial/"+serial)
	if err != nil || status != http.StatusOK {
		t.Fatalf("asking Pebble about %s: %d %v", serial, status, err)
	}
	var got struct {
		Status string
		Reason *int
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "Revoked" || got.Reason == nil || *got.Reason != 4 {
		t.Errorf("Pebble holds %s for serial %s, want Revoked with reason 4 (superseded)", body, serial)
	}
}

// pebbleManage GETs a path of Pebble's management interface.
func pebbleManage(ctx context.Context, p *testenv.Pebble, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.ManagementURL+path, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := p.HTTPClient().Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp.StatusCode, err
}

// contrastScript returns every rendered text whose contrast with the
// background behind it is under WCAG 2 AA: 4.5:1, or 3:1 for large text
// (24 px, or 18.66 px bold). Disabled controls are exempt, as WCAG says.
const contrastScript = `(() => {
  const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const blend = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const background = (el) => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; } }
    let bg = {r: 255, g: 255, b: 255, a: 1};
    if (layers.length && layers[layers.length - 1].a >= 1) bg = layers.pop();
    while (layers.length) bg = blend(layers.pop(), bg);
    return bg; };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    if (!el.getClientRects().length || el.closest(".visually-hidden, [hidden], :disabled, svg")) continue;
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === "hidden" || Number(cs.opacity) === 0) continue;
    const fg = blend(parse(cs.color), background(el));
    const l1 = lum(fg), l2 = lum(background(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) bad.push(el.tagName.toLowerCase() + (el.className ? "." + el.className : "") + " '" +
      el.textContent.trim().slice(0, 40) + "' " + ratio.toFixed(2) + ":1");
  }
  return bad;
})()`

// checkContrast fails the test for every text on the page with too little
// contrast.
func checkContrast(t *testing.T, b *browserSession, page string) {
	t.Helper()
	for _, bad := range eval[[]string](b, contrastScript) {
		t.Errorf("contrast on %s: %s", page, bad)
	}
}
