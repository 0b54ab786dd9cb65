package browsertest

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>form</title></head>
<body><main><h1>Hello</h1><form method="post" action="/echo"><label for="name">Name</label>
<input id="name" name="name"><button type="submit">Send</button></form></main></body></html>`

func server(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, page) })
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><html lang="en"><body><p id="out">got %s</p></body></html>`, r.FormValue("name"))
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestBrowser: Chromium loads a page over TLS from a certificate the test trusts by its key,
// fills a form and reads the answer.
func TestBrowser(t *testing.T) {
	srv := server(t)
	b := New(t, Options{TrustCerts: []*x509.Certificate{srv.Certificate()}})
	b.Run("fill the form",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.SendKeys(chromedp.CSS("#name"), "ada"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#out")))
	if got := b.Text("#out"); got != "got ada" {
		t.Errorf("answer %q", got)
	}
	if !strings.HasSuffix(b.Location(), "/echo") {
		t.Errorf("location %q", b.Location())
	}
}

// TestUntrusted: a certificate the test did not name is refused, as for a user.
func TestUntrusted(t *testing.T) {
	srv := server(t)
	b := New(t, Options{})
	ctx, cancel := context.WithTimeout(b.Ctx, StepTimeout)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"))
	if err == nil || !strings.Contains(err.Error(), "ERR_CERT") {
		t.Errorf("navigating to an untrusted certificate: %v, want a certificate error", err)
	}
}

// TestFailureScreenshot: a failed step leaves a PNG of the page and its text, and says where.
func TestFailureScreenshot(t *testing.T) {
	srv := server(t)
	b := New(t, Options{TrustCerts: []*x509.Certificate{srv.Certificate()}})
	b.Run("open", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("h1")))
	where := b.saveFailure("look for something missing")
	shot, _, ok := strings.Cut(strings.TrimPrefix(where, "screenshot: "), "\n")
	if !ok || !strings.HasPrefix(where, "screenshot: ") {
		t.Fatalf("failure note %q names no screenshot", where)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(shot)) })
	if want := os.Getenv(ScreenshotsEnv); want != "" && filepath.Dir(filepath.Dir(shot)) != filepath.Clean(want) {
		t.Errorf("screenshot %s is not under $%s (%s)", shot, ScreenshotsEnv, want)
	}
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
		t.Errorf("screenshot is %v", img.Bounds())
	}
	text, err := os.ReadFile(strings.TrimSuffix(shot, ".png") + ".txt")
	if err != nil || !strings.Contains(string(text), "Hello") || !strings.Contains(string(text), srv.URL) {
		t.Errorf("page text %q (%v)", text, err)
	}
}
