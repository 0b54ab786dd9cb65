// Package browsertest drives a real headless Chromium (Debian's chromium) through the Chrome
// DevTools Protocol with github.com/chromedp/chromedp, for the web console's and the researcher
// portal's browser tests. A test that finds no Chromium skips with a clear message, and fails
// under RAMPART_REQUIRE_ALL=1; a step that fails saves a screenshot and the page's text in a
// folder that outlives the test, and prints where. Only tests import it.
package browsertest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rampartsec/rampart/internal/testenv"
)

// StepTimeout bounds each Run: a page that never shows what a step waits for fails the test
// rather than hanging it.
const StepTimeout = 45 * time.Second

// Browser is one headless Chromium with one tab, closed when the test ends.
type Browser struct {
	// Ctx is the tab's context, for chromedp actions.
	Ctx context.Context
	t   testing.TB
	n   int
}

// Options tune the browser.
type Options struct {
	// TrustCerts are TLS certificates (the test server's) whose public keys Chromium accepts
	// although no CA it knows signed them; every other certificate error still fails the page.
	TrustCerts []*x509.Certificate
	// Width and Height are the window's size; 1280x900 when zero.
	Width, Height int
}

// Path finds Chromium: $RAMPART_CHROMIUM, else chromium or chromium-browser on PATH. It
// returns "" when there is none.
func Path() string {
	if p := os.Getenv("RAMPART_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts Chromium headless with a new, empty profile and opens a tab.
func New(t testing.TB, o Options) *Browser {
	t.Helper()
	path := Path()
	if path == "" {
		testenv.Missing(t, "Chromium", "install Debian's chromium package (apt-get install chromium), or set RAMPART_CHROMIUM to a Chromium binary")
	}
	if o.Width == 0 {
		o.Width, o.Height = 1280, 900
	}
	profile, err := os.MkdirTemp("", "rampart-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root here, where Chromium's sandbox cannot start
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(o.Width, o.Height),
	}
	if len(o.TrustCerts) > 0 {
		var spki []string
		for _, c := range o.TrustCerts {
			h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			spki = append(spki, base64.StdEncoding.EncodeToString(h[:]))
		}
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(spki, ",")))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}))
	// The first run starts the browser, and must not have a deadline of its own (chromedp stops
	// the browser when that context ends); the wait for it is bounded here instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err = <-started:
	case <-time.After(StepTimeout):
		err = fmt.Errorf("no answer in %s", StepTimeout)
	}
	if err != nil {
		cancelTab()
		cancelAlloc()
		if testenv.RequireAll() {
			t.Fatalf("Chromium (%s) did not start: %v", path, err)
		}
		t.Skipf("skipping: Chromium (%s) did not start: %v", path, err)
	}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	return &Browser{Ctx: ctx, t: t}
}

// Run runs the actions as one step named what, bounded by StepTimeout. When the step fails it
// saves a screenshot and the page's URL and text, prints where, and fails the test.
func (b *Browser) Run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.n++
	ctx, cancel := context.WithTimeout(b.Ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		where := b.saveFailure(what)
		b.t.Fatalf("browser step %q failed: %v\n%s", what, err, where)
	}
}

// Screenshot saves a PNG of the whole page to path.
func (b *Browser) Screenshot(path string) error {
	ctx, cancel := context.WithTimeout(b.Ctx, StepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// Value runs one action that returns a value, as a step named what (see Run).
func Value[T any](b *Browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	b.n++
	ctx, cancel := context.WithTimeout(b.Ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		where := b.saveFailure(what)
		b.t.Fatalf("browser step %q failed: %v\n%s", what, err, where)
	}
	return v
}

// Text returns the visible text of the first element the CSS selector sel matches, waiting
// for it to be visible.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	return Value(b, "read the text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// Location returns the tab's URL.
func (b *Browser) Location() string {
	b.t.Helper()
	return Value(b, "read the location", chromedp.Location())
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// saveFailure writes the screenshot, URL and text of the page as it was when a step failed
// into a new folder under the system's temporary folder (t.TempDir would be removed when the
// test ends) and returns a sentence saying where.
func (b *Browser) saveFailure(what string) string {
	dir, err := os.MkdirTemp("", "rampart-browser-"+unsafeName.ReplaceAllString(b.t.Name(), "_")+"-")
	if err != nil {
		return "no screenshot: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.Ctx), 15*time.Second)
	defer cancel()
	base := filepath.Join(dir, fmt.Sprintf("step%02d-%s", b.n, unsafeName.ReplaceAllString(what, "_")))
	png, shotErr := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	url, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	msg := ""
	if shotErr == nil {
		if err := os.WriteFile(base+".png", png, 0o644); err == nil {
			msg = "screenshot: " + base + ".png\n"
		}
	} else {
		msg = "no screenshot: " + shotErr.Error() + "\n"
	}
	os.WriteFile(base+".txt", []byte(url+"\n\n"+text), 0o644)
	return msg + "page " + url + " (its text: " + base + ".txt)"
}
