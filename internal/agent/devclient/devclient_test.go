package devclient

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestDo(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case deviceapi.PathInstallStatus:
			var in deviceapi.InstallStatus
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			if err := jsonDecode(r, &in); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			// A field this agent does not know is ignored: a newer server may add some.
			w.Write([]byte(`{"state":"` + string(in.State) + `","at":"2026-01-01T00:00:00Z","later_field":1}`))
		case deviceapi.PathWait:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no such route"}}`))
		case "/raw":
			w.Write([]byte("raw bytes"))
		}
	})
	c := New(srv.URL, srv.Client(), Limits{})
	ctx := context.Background()
	var out deviceapi.InstallStatus
	if err := c.Do(ctx, http.MethodPost, deviceapi.PathInstallStatus, deviceapi.InstallStatus{State: deviceapi.InstallCommitted}, &out); err != nil {
		t.Fatal(err)
	}
	if want := (deviceapi.InstallStatus{State: deviceapi.InstallCommitted, At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}); !cmp.Equal(out, want) {
		t.Errorf("answer %+v, want %+v", out, want)
	}
	err := c.Do(ctx, http.MethodGet, deviceapi.PathWait, nil, nil)
	if !IsStatus(err, http.StatusNotFound) {
		t.Fatalf("404 = %v, want a StatusError", err)
	}
	if se, _ := errors.AsType[*StatusError](err); se.Code != "not_found" || se.Message != "no such route" {
		t.Errorf("StatusError %+v", se)
	}
	var raw []byte
	if err := c.Do(ctx, http.MethodGet, "/raw", nil, &raw); err != nil || string(raw) != "raw bytes" {
		t.Errorf("raw = %q, %v", raw, err)
	}
}

// TestDoRefusesHeldAnswers: a server that never answers, one that trickles its answer, and one
// that sends too much are each refused.
func TestDoRefusesHeldAnswers(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "/trickle":
			w.WriteHeader(http.StatusOK)
			for range 1000 {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-release:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		case "/large":
			w.Write([]byte(strings.Repeat("x", 100)))
		}
	})
	c := New(srv.URL, srv.Client(), Limits{Deadline: 2 * time.Second, MinRate: 100, RateWindow: 200 * time.Millisecond, MaxAnswer: 10})
	ctx := context.Background()
	for _, tc := range []struct {
		path string
		want error
	}{
		{"/silent", ErrDeadline},
		{"/trickle", ErrSlow},
		{"/large", ErrTooLarge},
	} {
		var raw []byte
		if err := c.Do(ctx, http.MethodGet, tc.path, nil, &raw); !errors.Is(err, tc.want) {
			t.Errorf("GET %s = %v, want %v", tc.path, err, tc.want)
		}
	}
}

func jsonDecode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// TestUnreachableSentences pins the agent's last line when the server cannot be reached: what to
// check, with no function names or Go's "Post URL" chain; errors.Is still sees the cause.
func TestUnreachableSentences(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	// A client that does not trust the server's CA.
	err := New(srv.URL, &http.Client{}, Limits{}).Do(context.Background(), "POST", "/device/v1/enroll", nil, nil)
	want := "cannot verify the certificate of " + srv.URL + ": pass --ca-file with the CA that signed it (the server's DATA/service-ca.pem)"
	if msg, ok := public.Message(err); !ok || msg != want {
		t.Errorf("unknown CA: %v; sentence %q (%v), want %q", err, msg, ok, want)
	}
	// Nothing listens at the address.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "https://" + l.Addr().String()
	l.Close()
	err = New(down, srv.Client(), Limits{}).Do(context.Background(), "POST", "/device/v1/enroll", nil, nil)
	want = "nothing answers at " + down + ": is rampart server running there, and is --server right?"
	if msg, ok := public.Message(err); !ok || msg != want || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("server down: %v; sentence %q (%v), want %q", err, msg, ok, want)
	}
}
