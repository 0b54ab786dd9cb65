package api

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/ratelimit"
	"github.com/rampartsec/rampart/internal/release"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/tuf"
)

// liveWorld is the real API and repository handler on a TLS loopback
// server, with an attacker sitting in front of it, and a device running
// the agent's updater committed on 1.0.0 with 1.1.0 signed.
type liveWorld struct {
	t        *testing.T
	h        *harness
	dev      fleetDevice
	tenantID string
	srv      *httptest.Server
	mtls     *http.Client
	roots    client.TUFRoots
	slots    string
	state    string
	// snapshotV1 is the repository snapshot from before 1.1.0 was signed.
	snapshotV1 []byte

	mu     sync.Mutex
	attack func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

func newLiveWorld(t *testing.T) *liveWorld {
	t.Helper()
	h := newHarness(t, "sqlite")
	h.api.deviceLimit = ratelimit.New(1000, 1000, 100)
	ctx := context.Background()
	lw := &liveWorld{t: t, h: h, dev: h.newDevice("default"), slots: t.TempDir(), state: t.TempDir()}
	tenant, _ := h.store.TenantByName(ctx, "default")
	lw.tenantID = tenant.ID
	keys := h.keysInit(h.admin)
	v1 := make([]byte, 96<<10)
	for i := range v1 {
		v1[i] = byte(i*13 + i/509)
	}
	v2 := append(append([]byte(nil), v1[:50<<10]...), append([]byte("the fix"), v1[50<<10:]...)...)
	h.signedRelease(h.admin, keys, "lamp", "1.0.0", v1)

	mux := http.NewServeMux()
	mux.Handle("/tuf/", h.api.releases.Handler())
	mux.Handle("/", h.api)
	lw.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lw.mu.Lock()
		attack := lw.attack
		lw.mu.Unlock()
		if attack != nil && attack(w, r, mux) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	lw.srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	lw.srv.StartTLS()
	t.Cleanup(lw.srv.Close)
	cert := h.issue("default", lw.dev, ca.ProfileNormal, time.Now())
	tr := lw.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	lw.mtls = &http.Client{Transport: tr}
	var err error
	if lw.roots, err = h.client(h.admin).TUFRoots(ctx); err != nil {
		t.Fatal(err)
	}
	lw.assign("1.0.0")
	if out, err := lw.run(); err != nil || !out.Committed {
		t.Fatalf("install 1.0.0: %+v, %v", out, err)
	}
	lw.snapshotV1 = lw.fetch("/tuf/default/metadata/snapshot.json")
	h.signedRelease(h.admin, keys, "lamp", "1.1.0", v2)
	return lw
}

func (lw *liveWorld) assign(version string) {
	lw.t.Helper()
	if err := lw.h.api.releases.Assign(context.Background(), store.System, lw.tenantID, lw.dev.id, "lamp", version); err != nil {
		lw.t.Fatal(err)
	}
}

func (lw *liveWorld) setAttack(f func(w http.ResponseWriter, r *http.Request, next http.Handler) bool) {
	lw.mu.Lock()
	lw.attack = f
	lw.mu.Unlock()
}

func (lw *liveWorld) run(opts ...func(*update.Config)) (update.Outcome, error) {
	lw.t.Helper()
	slots, err := update.OpenSlots(lw.slots, nil)
	if err != nil {
		lw.t.Fatal(err)
	}
	cfg := update.Config{
		DeviceID: lw.dev.id, RepoURL: lw.srv.URL + "/tuf/default", DirectorURL: lw.srv.URL + "/device/v1/director",
		RepoRoot: lw.roots.Root, DirectorRoot: lw.roots.DirectorRoot, StateDir: lw.state, Slots: slots, HTTPClient: lw.mtls,
		Limits: update.Limits{RateWindow: 2 * time.Second, MinRate: 1},
	}
	for _, o := range opts {
		o(&cfg)
	}
	u, err := update.New(cfg)
	if err != nil {
		lw.t.Fatal(err)
	}
	return u.RunOnce(context.Background())
}

// fetch reads what the real server answers for path.
func (lw *liveWorld) fetch(path string) []byte {
	lw.t.Helper()
	resp, err := lw.mtls.Get(lw.srv.URL + path)
	if err != nil {
		lw.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

// stillOn checks the device kept release committed and boots it verified.
func (lw *liveWorld) stillOn(release string) {
	lw.t.Helper()
	slots, err := update.OpenSlots(lw.slots, nil)
	if err != nil {
		lw.t.Fatal(err)
	}
	b, err := slots.Boot()
	if err != nil || b.Trial || b.Info.Release != release {
		lw.t.Fatalf("device boots %+v, %v; want committed %s", b, err, release)
	}
}

// TestAttacksAgainstServer performs TUF's attacks between the real server
// and the agent's updater and checks each is refused with the device left
// on its verified 1.0.0 slot (or, for a tampered delta, on 1.1.0 from the
// full image).
func TestAttacksAgainstServer(t *testing.T) {
	serveBytes := func(b []byte) func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool { w.Write(b); return true }
	}
	tests := []struct {
		name  string
		setup func(lw *liveWorld)
		opts  []func(*update.Config)
		want  error
		after string
	}{
		{"arbitrary software", func(lw *liveWorld) {
			lw.assign("1.1.0")
			forged := metadata.Targets(time.Now().Add(time.Hour))
			forged.Signed.Version = 99
			k, _ := tuf.GenerateKey("targets")
			signer, err := signature.LoadED25519Signer(k.Private)
			if err != nil {
				lw.t.Fatal(err)
			}
			if _, err := forged.Sign(signer); err != nil {
				lw.t.Fatal(err)
			}
			b, _ := forged.ToBytes(false)
			lw.setAttack(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if strings.HasSuffix(r.URL.Path, ".targets.json") {
					w.Write(b)
					return true
				}
				return false
			})
		}, nil, update.ErrMetadata, "1.0.0"},
		{"rollback", func(lw *liveWorld) {
			old := lw.fetch("/tuf/default/metadata/timestamp.json")
			// The server re-signs the timestamp (a later refresh); the
			// device sees it, then the attacker replays the old one.
			later := time.Now().Add(13 * time.Hour)
			lw.h.api.releases = mustWithClock(lw.t, lw.h, func() time.Time { return later })
			if err := lw.h.api.releases.Refresh(context.Background()); err != nil {
				lw.t.Fatal(err)
			}
			if _, err := lw.run(func(c *update.Config) { c.Now = func() time.Time { return later } }); err != nil {
				lw.t.Fatal(err)
			}
			lw.assign("1.1.0")
			lw.setAttack(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if strings.HasSuffix(r.URL.Path, "/metadata/timestamp.json") {
					w.Write(old)
					return true
				}
				return false
			})
		}, nil, update.ErrMetadata, "1.0.0"},
		{"indefinite freeze", func(lw *liveWorld) {
			lw.assign("1.1.0")
		}, []func(*update.Config){func(c *update.Config) { c.Now = func() time.Time { return time.Now().Add(72 * time.Hour) } }}, update.ErrMetadata, "1.0.0"},
		{"mix and match", func(lw *liveWorld) {
			// The current timestamp names the new snapshot by hash and
			// version; the mirror serves the old one under the new name.
			oldSnap := lw.snapshotV1
			lw.assign("1.1.0")
			lw.setAttack(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if strings.HasSuffix(r.URL.Path, ".snapshot.json") {
					w.Write(oldSnap)
					return true
				}
				return false
			})
		}, nil, update.ErrMetadata, "1.0.0"},
		{"endless data", func(lw *liveWorld) {
			lw.assign("1.1.0")
			lw.setAttack(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if !strings.HasPrefix(r.URL.Path, "/tuf/default/targets/") {
					return false
				}
				buf := make([]byte, 32<<10)
				for range 1 << 12 {
					if _, err := w.Write(buf); err != nil || r.Context().Err() != nil {
						break
					}
				}
				return true
			})
		}, nil, update.ErrTooLarge, "1.0.0"},
		{"slow retrieval", func(lw *liveWorld) {
			lw.assign("1.1.0")
			lw.setAttack(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if !strings.HasPrefix(r.URL.Path, "/tuf/default/targets/") {
					return false
				}
				w.WriteHeader(http.StatusOK)
				for range 300 {
					select {
					case <-r.Context().Done():
						return true
					case <-time.After(20 * time.Millisecond):
						w.Write([]byte{0})
						w.(http.Flusher).Flush()
					}
				}
				return true
			})
		}, []func(*update.Config){func(c *update.Config) {
			c.Limits = update.Limits{MinRate: 64 << 10, RateWindow: 200 * time.Millisecond}
		}}, update.ErrSlowRetrieval, "1.0.0"},
		{"malicious mirror", func(lw *liveWorld) {
			lw.assign("1.1.0")
			lw.setAttack(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if !strings.HasPrefix(r.URL.Path, "/tuf/default/targets/") {
					return false
				}
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				b := rec.Body.Bytes()
				for i := range b {
					b[i] ^= 0x33
				}
				w.Write(b)
				return true
			})
		}, nil, update.ErrVerification, "1.0.0"},
		{"compromised director key alone", func(lw *liveWorld) {
			// The attacker holds the server's online director key and signs
			// metadata naming its own image, which the offline targets
			// keys never signed.
			evil := tuf.Image{SHA256: strings.Repeat("e", 64), Length: 66, Component: "rootfs", Version: "9.0.0", SecurityVersion: 9}
			dir, err := tuf.NewDirector([][]byte{lw.roots.DirectorRoot}, lw.h.online.Director, tuf.DefaultExpiry())
			if err != nil {
				lw.t.Fatal(err)
			}
			f, err := dir.Issue(tuf.Assignment{DeviceID: lw.dev.id, Version: 500, Release: "9.0.0", Images: []tuf.Image{evil}}, time.Now())
			if err != nil {
				lw.t.Fatal(err)
			}
			files := f.Files()
			lw.setAttack(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				name := strings.TrimPrefix(r.URL.Path, "/device/v1/director/")
				if b, ok := files[name]; ok && name != r.URL.Path {
					return serveBytes(b)(w, r, next)
				}
				return false
			})
		}, nil, update.ErrDirectorMismatch, "1.0.0"},
		{"tampered delta", func(lw *liveWorld) {
			lw.assign("1.1.0")
			lw.setAttack(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if !strings.HasPrefix(r.URL.Path, "/tuf/default/targets/deltas/") {
					return false
				}
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				b := rec.Body.Bytes()
				b[len(b)/2] ^= 0xff
				w.Write(b)
				return true
			})
		}, nil, nil, "1.1.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lw := newLiveWorld(t)
			tc.setup(lw)
			out, err := lw.run(tc.opts...)
			if tc.want == nil {
				if err != nil || !out.Committed || len(out.Delta) != 0 {
					t.Fatalf("RunOnce: %+v, %v; want 1.1.0 from the full image", out, err)
				}
			} else if !errors.Is(err, tc.want) {
				t.Fatalf("RunOnce: %v, want %v", err, tc.want)
			}
			lw.stillOn(tc.after)
		})
	}
}

// mustWithClock returns a release service over the harness's store, blobs
// and online keys whose clock reads now().
func mustWithClock(t *testing.T, h *harness, now func() time.Time) *release.Service {
	t.Helper()
	s, err := release.New(release.Config{Store: h.store, Blobs: h.blobs, Online: h.online, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
