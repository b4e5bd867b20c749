package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// chromiumFlags start Chromium headless, without the sandbox (the tests run
// as root), and without the background services whose connections this
// machine refuses.
var chromiumFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("headless", true),
	chromedp.NoSandbox,
	chromedp.DisableGPU,
	chromedp.NoFirstRun,
	chromedp.NoDefaultBrowserCheck,
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
	chromedp.Flag("disable-extensions", true),
	chromedp.Flag("disable-dev-shm-usage", true),
	chromedp.WindowSize(1280, 900),
}

// chromiumPath finds the browser: $CERTKEEPER_CHROMIUM, else the Debian
// package's /usr/bin/chromium, else chromium or google-chrome on PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv("CERTKEEPER_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium found: install the Debian package chromium (bash .ci/run does) or set CERTKEEPER_CHROMIUM")
}

// browserSession is one headless Chromium with one tab, driven by a test.
// It collects what the page writes to the console and fails the test on an
// uncaught exception, a Content-Security-Policy or Trusted Types violation,
// or a console.error call; failed network requests are expected (a 400
// from a validation is a normal answer) and only logged.
type browserSession struct {
	t   *testing.T
	ctx context.Context
	// downloads is where the tab saves downloads.
	downloads string

	mu       sync.Mutex
	problems []string
}

// startBrowser starts Chromium for t; it is closed in t.Cleanup.
func startBrowser(t *testing.T) *browserSession {
	t.Helper()
	path, err := chromiumPath()
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir())}, chromiumFlags...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	b := &browserSession{t: t, ctx: ctx, downloads: t.TempDir()}

	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			text := fmt.Sprintf("%s [%s %s] %s (%s:%d)", m.Time.Format("15:04:05.000"), m.Type, m.Source, m.Text, m.URL, m.Line)
			bad := m.IsException() || m.Source == "security" || (m.Type == chromedp.ConsoleError && m.Source != "network") ||
				strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Trusted Type")
			b.mu.Lock()
			if bad {
				b.problems = append(b.problems, text)
			}
			b.mu.Unlock()
			t.Logf("browser console: %s", text)
		}
	}()
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
		<-done
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("the page reported a problem: %s", p)
		}
	})
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: b.downloads,
	}); err != nil {
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	return b
}

// do runs actions in the tab, failing the test with what step says it was
// doing.
func (b *browserSession) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	for i, a := range actions {
		if err := chromedp.Do(ctx, a); err != nil {
			b.t.Fatalf("browser: %s (action %d of %d): %v\npage %s", step, i+1, len(actions), err, b.location())
		}
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browserSession, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor waits until the JavaScript predicate fn (a function source taking
// args) is truthy in the page. It asks again every 100 ms, also across
// navigations, for up to 90 seconds.
func (b *browserSession) waitFor(what, fn string, args ...any) {
	b.t.Helper()
	if args == nil {
		args = []any{}
	}
	encoded, err := json.Marshal(args)
	if err != nil {
		b.t.Fatal(err)
	}
	expr := "Boolean((" + fn + ")(..." + string(encoded) + "))"
	deadline := time.Now().Add(90 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		lastErr = err
		if b.ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	b.t.Fatalf("browser: waiting for %s (last error %v)\npage %s:\n%s", what, lastErr, b.location(), body)
}

// waitText waits until the element sel holds text.
func (b *browserSession) waitText(sel, text string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("%q in %s", text, sel),
		`(sel, text) => { const el = document.querySelector(sel); return !!el && el.textContent.includes(text); }`, sel, text)
}

// waitPath waits until the tab is at path (pathname and search).
func (b *browserSession) waitPath(path string) {
	b.t.Helper()
	b.waitFor("page "+path, `(p) => location.pathname + location.search === p && document.readyState === "complete"`, path)
}

// count returns how many elements match sel.
func (b *browserSession) count(sel string) int {
	b.t.Helper()
	return eval[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

// text returns the text of the first element matching sel, "" when none.
func (b *browserSession) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, sel))
}

// visible reports whether the first element matching sel is rendered.
func (b *browserSession) visible(sel string) bool {
	b.t.Helper()
	return eval[bool](b, fmt.Sprintf(`(() => { const el = document.querySelector(%q); return !!el && el.getClientRects().length > 0; })()`, sel))
}

// click clicks the middle of the element sel with the mouse, as a person
// would, after scrolling it into view; it fails the test when the element
// is missing, not rendered, or covered by another element.
//
// (chromedp's Click and SendKeys wait on its mirror of the DOM, which can
// miss nodes the page replaced; the helpers here ask the page itself.)
func (b *browserSession) click(sel string) {
	b.t.Helper()
	b.waitFor(sel+" to be rendered", `(sel) => { const el = document.querySelector(sel); return !!el && el.getClientRects().length > 0; }`, sel)
	xy := eval[[]float64](b, fmt.Sprintf(`(() => { const el = document.querySelector(%q);
		el.scrollIntoView({block: "center", inline: "center"});
		const r = el.getBoundingClientRect(); const x = r.left + r.width / 2, y = r.top + r.height / 2;
		const hit = document.elementFromPoint(x, y);
		return hit && (hit === el || el.contains(hit)) ? [x, y] : []; })()`, sel))
	if len(xy) != 2 {
		b.t.Fatalf("browser: %s is covered by another element", sel)
	}
	b.do("clicking "+sel, chromedp.MouseClickXY(xy[0], xy[1]))
}

// typeText clicks into the input sel and types text on the keyboard.
func (b *browserSession) typeText(sel, text string) {
	b.t.Helper()
	b.click(sel)
	if got := eval[bool](b, fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, sel)); !got {
		b.t.Fatalf("browser: clicking %s did not focus it", sel)
	}
	b.do("typing into "+sel, chromedp.KeyEvent(text))
}

// navigate opens url in the tab.
func (b *browserSession) navigate(url string) {
	b.t.Helper()
	b.do("opening "+url, chromedp.Navigate(url))
}

// clear empties the input sel as a person would, firing input.
func (b *browserSession) clear(sel string) {
	b.t.Helper()
	ok := eval[bool](b, fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false;
		el.value = ""; el.dispatchEvent(new Event("input", {bubbles: true})); return true; })()`, sel))
	if !ok {
		b.t.Fatalf("browser: no input %s", sel)
	}
}

// choose selects value in the <select> sel as a person would, firing change.
func (b *browserSession) choose(sel, value string) {
	b.t.Helper()
	ok := eval[bool](b, fmt.Sprintf(`(() => { const el = document.querySelector(%q);
		if (!el || ![...el.options].some((o) => o.value === %q)) return false;
		el.value = %q; el.dispatchEvent(new Event("change", {bubbles: true})); return true; })()`, sel, value, value))
	if !ok {
		b.t.Fatalf("browser: %s has no option %q", sel, value)
	}
}

func (b *browserSession) location() string {
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	return loc
}

// screenshot saves the whole page as name.png in the test's artifact
// directory (kept with go test -artifacts) and returns the PNG.
func (b *browserSession) screenshot(name string) []byte {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("writing screenshot: %v", err)
	}
	b.t.Logf("screenshot %s", path)
	return png
}

// waitDownload waits for a finished download named name and returns its
// contents.
func (b *browserSession) waitDownload(name string) []byte {
	b.t.Helper()
	path := filepath.Join(b.downloads, name)
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil && len(data) > 0 {
			if _, err := os.Stat(path + ".crdownload"); os.IsNotExist(err) {
				return data
			}
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(b.downloads)
			b.t.Fatalf("browser: no download %s after 30 s (download directory: %v)", name, entries)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// signIn signs in on the sign-in page with key and waits for next.
func (b *browserSession) signIn(key, next string) {
	b.t.Helper()
	b.clear("#api-key")
	b.typeText("#api-key", key)
	b.click("#signin-form button[type=submit]")
	b.waitPath(next)
}

// signOut signs out with the top bar's button and waits for the sign-in page.
func (b *browserSession) signOut() {
	b.t.Helper()
	b.click("#sign-out")
	b.waitPath("/signin")
}
