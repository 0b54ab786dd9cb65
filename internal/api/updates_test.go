package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/agent/devclient"
	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/ratelimit"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// devicePost sends a JSON body to the device API with the given certificate.
func (h *harness) devicePostText(path string, cert *tls.Certificate, body string) (int, string) {
	h.t.Helper()
	tr := h.srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post(h.srv.URL+path, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDeviceUpdateEndpoints(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		dev := h.newDevice("default")
		imageID := h.updatesFor(h.admin, "lamp")
		tenant, _ := h.store.TenantByName(ctx, "default")
		if err := h.api.releases.Assign(ctx, store.System, tenant.ID, dev.id, "lamp", "1.0.0"); err != nil {
			t.Fatal(err)
		}
		h.tenantAdmin("globex")
		other := h.newDevice("globex")
		now := time.Now()
		normal := h.issue("default", dev, ca.ProfileNormal, now)
		updateOnly := h.issue("default", dev, ca.ProfileUpdateOnly, now)
		otherCert := h.issue("globex", other, ca.ProfileNormal, now)

		for _, tc := range []struct {
			name   string
			path   string
			cert   *tls.Certificate
			status int
			want   string
		}{
			{"targets", "/device/v1/director/targets.json", &normal, 200, imageID},
			{"targets with an update-only certificate", "/device/v1/director/targets.json", &updateOnly, 200, dev.id},
			{"director root", "/device/v1/director/1.root.json", &normal, 200, `"_type":"root"`},
			{"unknown file", "/device/v1/director/secrets.json", &normal, 404, "not found"},
			{"no certificate", "/device/v1/director/targets.json", nil, 401, "certificate is required"},
			{"other tenant's device", "/device/v1/director/targets.json", &otherCert, 409, "no update keys"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body := h.deviceGet(tc.path, tc.cert)
				if status != tc.status || !strings.Contains(body, tc.want) {
					t.Fatalf("got %d %s; want %d with %q", status, body, tc.status, tc.want)
				}
				if tc.cert == &otherCert && strings.Contains(body, imageID) {
					t.Error("another tenant's device reads this tenant's director metadata")
				}
			})
		}

		for _, tc := range []struct {
			name   string
			body   string
			status int
			want   string
		}{
			{"unknown state", `{"state":"hacked"}`, 400, "state"},
			{"committed without release", `{"state":"committed"}`, 400, "names its release"},
			{"bad release", `{"state":"failed","release":"../x"}`, 400, "release"},
			{"control characters", `{"state":"failed","reason":"a\u0001b"}`, 400, "printable"},
			{"NUL", `{"state":"failed","reason":"a\u0000b"}`, 400, "NUL"},
			{"too long", `{"state":"failed","reason":"` + strings.Repeat("x", 1001) + `"}`, 400, "at most"},
			{"unknown field", `{"state":"failed","slot":"a"}`, 400, "unknown field"},
			{"server time", `{"state":"failed","at":"2020-01-01T00:00:00Z"}`, 400, "set by the server"},
			{"downloading", `{"state":"downloading","release":"1.0.0"}`, 200, "downloading"},
			{"committed", `{"state":"committed","release":"1.0.0"}`, 200, "committed"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := h.snapshot()
				status, body := h.devicePostText("/device/v1/install-status", &normal, tc.body)
				if status != tc.status || !strings.Contains(body, tc.want) {
					t.Fatalf("got %d %s; want %d with %q", status, body, tc.status, tc.want)
				}
				if status != 200 && h.snapshot()["audit_records"] != before["audit_records"] {
					t.Error("a refused report wrote an audit record")
				}
			})
		}
		d, err := h.client(h.admin).GetDevice(ctx, dev.id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Install == nil || d.Install.State != "committed" || d.Install.Release != "1.0.0" || d.CurrentRelease != "1.0.0" || d.TargetRelease != "1.0.0" {
			t.Errorf("device show after reports: %+v install %+v", d, d.Install)
		}
	})
}

// TestAgentAgainstServer runs the agent's real updater against the API's
// device endpoints over mutual TLS and the published repository: 1.0.0
// installed, 1.1.0 by delta, 1.0.0 pushed back refused, every state
// visible in device show.
func TestAgentAgainstServer(t *testing.T) {
	h := newHarness(t, "sqlite")
	// Three update cycles back to back; a real device spreads them over hours.
	h.api.deviceLimit = ratelimit.New(1000, 1000, 100)
	ctx := context.Background()
	dev := h.newDevice("default")
	tenant, _ := h.store.TenantByName(ctx, "default")
	keys := h.keysInit(h.admin)
	v1 := make([]byte, 128<<10)
	for i := range v1 {
		v1[i] = byte(i*7 + i/251)
	}
	v2 := append(append([]byte(nil), v1[:64<<10]...), append([]byte("a new function"), v1[64<<10:]...)...)
	h.signedRelease(h.admin, keys, "lamp", "1.0.0", v1)

	mux := http.NewServeMux()
	mux.Handle("/tuf/", h.api.releases.Handler())
	mux.Handle("/", h.api)
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	cert := h.issue("default", dev, ca.ProfileNormal, time.Now())
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	mtls := &http.Client{Transport: tr}
	roots, err := h.client(h.admin).TUFRoots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slotsDir, stateDir := t.TempDir(), t.TempDir()
	run := func() (update.Outcome, error) {
		slots, err := update.OpenSlots(slotsDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		u, err := update.New(update.Config{
			DeviceID: dev.id, RepoURL: srv.URL + "/tuf/default", DirectorURL: srv.URL + "/device/v1/director",
			RepoRoot: roots.Root, DirectorRoot: roots.DirectorRoot, StateDir: stateDir, Slots: slots, HTTPClient: mtls,
			Reporter: &update.HTTPReporter{Client: devclient.New(srv.URL, mtls, devclient.Limits{})},
		})
		if err != nil {
			t.Fatal(err)
		}
		return u.RunOnce(ctx)
	}
	show := func() client.Device {
		d, err := h.client(h.admin).GetDevice(ctx, dev.id)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	if err := h.api.releases.Assign(ctx, store.System, tenant.ID, dev.id, "lamp", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if out, err := run(); err != nil || !out.Committed {
		t.Fatalf("install 1.0.0: %+v, %v", out, err)
	}
	if d := show(); d.CurrentRelease != "1.0.0" || d.Install == nil || d.Install.State != "committed" {
		t.Fatalf("device after 1.0.0: %+v %+v", d, d.Install)
	}

	h.signedRelease(h.admin, keys, "lamp", "1.1.0", v2)
	if err := h.api.releases.Assign(ctx, store.System, tenant.ID, dev.id, "lamp", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	out, err := run()
	if err != nil || !out.Committed || len(out.Delta) != 1 {
		t.Fatalf("install 1.1.0: %+v, %v", out, err)
	}
	if d := show(); d.CurrentRelease != "1.1.0" || d.Install.State != "committed" || d.Install.Release != "1.1.0" {
		t.Fatalf("device after 1.1.0: %+v %+v", d, d.Install)
	}
	// A newly committed release is a coverage event for the rollout engine
	// (the harness registers the device as already running 1.0.0).
	var events int
	if err := storetest.DB(h.store).QueryRow(`SELECT COUNT(*) FROM coverage_events WHERE device_id = $1 AND release_version = '1.1.0'`, dev.id).Scan(&events); err != nil || events != 1 {
		t.Errorf("coverage events for 1.1.0 = %d, %v; want 1", events, err)
	}

	if err := h.api.releases.Assign(ctx, store.System, tenant.ID, dev.id, "lamp", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(); !errors.Is(err, update.ErrRollback) {
		t.Fatalf("push back 1.0.0: %v, want ErrRollback", err)
	}
	if d := show(); d.CurrentRelease != "1.1.0" || d.Install.State != "failed" || !strings.Contains(d.Install.Reason, "older") {
		t.Fatalf("device after refused push-back: %+v %+v", d, d.Install)
	}
}

// TestImageTypes uploads images of each type: the type and a bundle's manifest hash come back in
// the image's JSON; an unknown type, a bundle without its manifest hash and a hash on another
// type are refused with a sentence and store nothing.
func TestImageTypes(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		hash := strings.Repeat("ab", 32)
		for _, tc := range []struct {
			query, want string
			status      int
		}{
			{"", `"type":"directory"`, http.StatusCreated},
			{"&type=module:script", `"type":"module:script"`, http.StatusCreated},
			{"&type=reference", `"type":"reference"`, http.StatusCreated},
			{"&type=rauc-bundle&rauc_manifest_hash=" + hash, `"rauc_manifest_hash":"` + hash + `"`, http.StatusCreated},
			{"&type=swupdate", `type \"swupdate\"`, http.StatusBadRequest},
			{"&type=module:Bad%20Name", `type \"module:Bad Name\"`, http.StatusBadRequest},
			{"&type=rauc-bundle", "needs its manifest hash", http.StatusBadRequest},
			{"&type=module:deb&rauc_manifest_hash=" + hash, "only a rauc-bundle has a manifest hash", http.StatusBadRequest},
		} {
			status, body := h.raw("POST", "/api/v1/images?component=app&version=1.0.0"+tc.query, h.admin, "application/octet-stream", "bytes of "+tc.query)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("upload%s: %d %s, want %d with %s", tc.query, status, body, tc.status, tc.want)
			}
		}
	})
}
