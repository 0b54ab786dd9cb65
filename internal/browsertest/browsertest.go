// Package browsertest drives a real headless Chromium (Debian's chromium) through the Chrome
// DevTools Protocol with github.com/chromedp/chromedp, for the web console's and the researcher
// portal's browser tests. A test that finds no Chromium skips with a clear message, and fails
// under RAMPART_REQUIRE_ALL=1; a step that fails saves a screenshot and the page's text in a
// folder that outlives the test, and prints where. Only tests import it.
package browsertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"image/png"
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

// ScreenshotsEnv names a folder for the pictures and texts of failed steps (a CI job's
// artifacts); the system's temporary folder when unset.
const ScreenshotsEnv = "RAMPART_SCREENSHOTS"

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
	b.RunWithin(StepTimeout, what, actions...)
}

// RunWithin is Run bounded by limit instead of StepTimeout, for a step that waits on
// something slower than a page (devices installing a release). The limit only stops a hung
// test; it asserts nothing about speed.
func (b *Browser) RunWithin(limit time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.n++
	ctx, cancel := context.WithTimeout(b.Ctx, limit)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		where := b.saveFailure(what)
		b.t.Fatalf("browser step %q failed: %v\n%s", what, err, where)
	}
}

// Isolated opens another tab in a browser context of its own: a separate cookie jar, as a
// second person at another computer (an operator and a researcher signed in at once).
func (b *Browser) Isolated() *Browser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.Ctx, chromedp.WithNewBrowserContext())
	// As in New: the first run opens the tab, and must not have a deadline of its own.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	var err error
	select {
	case err = <-started:
	case <-time.After(StepTimeout):
		err = fmt.Errorf("no answer in %s", StepTimeout)
	}
	if err != nil {
		cancel()
		b.t.Fatalf("open an isolated tab: %v", err)
	}
	b.t.Cleanup(cancel)
	return &Browser{Ctx: ctx, t: b.t}
}

// ShotPNG saves what the window shows (not the whole page) to path as a PNG compressed with
// the best compression Go has, for pictures checked into the documentation.
func (b *Browser) ShotPNG(path string) error {
	ctx, cancel := context.WithTimeout(b.Ctx, StepTimeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return err
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, img); err != nil {
		return err
	}
	return os.WriteFile(path, out.Bytes(), 0o644)
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
// into a new folder under $RAMPART_SCREENSHOTS or the system's temporary folder (t.TempDir
// would be removed when the test ends) and returns a sentence saying where.
func (b *Browser) saveFailure(what string) string {
	parent := os.Getenv(ScreenshotsEnv)
	if parent != "" {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return "no screenshot: " + err.Error()
		}
	}
	dir, err := os.MkdirTemp(parent, "rampart-browser-"+unsafeName.ReplaceAllString(b.t.Name(), "_")+"-")
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

// Void is the action a, its value dropped, for Run.
func Void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// Until waits until the JavaScript expression is true in the tab, evaluating it every 50 ms
// across navigations (a form's answer loading, a reload): an evaluation that fails because the
// page is changing is tried again. It ends with the step's deadline, naming the expression and
// the last error.
func Until(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		var last error
		for {
			ok, err := chromedp.Evaluate[bool]("Boolean("+expr+")")(ctx, t)
			if err == nil && ok {
				return chromedp.Void{}, nil
			}
			if err != nil {
				last = err
			}
			select {
			case <-ctx.Done():
				if last != nil {
					return chromedp.Void{}, fmt.Errorf("%s never held (last error: %v): %w", expr, last, ctx.Err())
				}
				return chromedp.Void{}, fmt.Errorf("%s never held: %w", expr, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// Eval runs a JavaScript expression in the page and drops its value.
func Eval(expr string) chromedp.Action[chromedp.Void] {
	return Void(chromedp.Evaluate[any](expr))
}
