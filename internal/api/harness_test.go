package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/ca/keeper"
	"github.com/rampartsec/rampart/internal/release"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/token"
	"github.com/rampartsec/rampart/internal/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// harness is a real store behind a real API on a loopback HTTP server, with the first tenant's
// service administrator token.
type harness struct {
	t     testing.TB
	store *store.Store
	api   *API
	srv   *httptest.Server
	admin string // service admin of tenant "default"
	cas   *keeper.Keeper
	refs  references // reference values the attestation service sees
	// online and blobs back the release service (signed updates).
	online *tuf.OnlineKeys
	blobs  *release.Blobs
}

func newHarness(t testing.TB, kind string) *harness {
	t.Helper()
	s := storetest.Open(t, kind)
	secret, hash := token.Generate()
	if _, _, _, err := s.Bootstrap(context.Background(), "default", hash); err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	// Tenant CAs are made as if two days ago, so tests can issue certificates in the past.
	cas, err := keeper.New(s, kek, func() time.Time { return time.Now().Add(-48 * time.Hour) }, "")
	if err != nil {
		t.Fatal(err)
	}
	online, err := tuf.GenerateOnlineKeys()
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := release.OpenBlobs(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	rels, err := release.New(release.Config{Store: s, Blobs: blobs, Online: online, MaxImageSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	refs := references{}
	a := New(Deps{Store: s, Logger: slog.New(slog.DiscardHandler), CAs: cas, References: refs, Releases: rels})
	srv := httptest.NewUnstartedServer(a)
	srv.Config.ConnContext = ConnContext
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &harness{t: t, store: s, api: a, srv: srv, admin: secret, cas: cas, refs: refs, online: online, blobs: blobs}
}

func (h *harness) client(tok string) *client.Client {
	h.t.Helper()
	c, err := client.New(h.srv.URL, client.WithToken(tok), client.WithHTTPClient(h.srv.Client()))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// tenantAdmin creates a tenant and returns an admin token of it.
func (h *harness) tenantAdmin(name string) string {
	h.t.Helper()
	ctx := context.Background()
	c := h.client(h.admin)
	if _, err := c.CreateTenant(ctx, client.CreateTenantRequest{Name: name}); err != nil {
		h.t.Fatalf("create tenant %s: %v", name, err)
	}
	tok, err := c.CreateToken(ctx, client.CreateTokenRequest{Tenant: name, Role: "admin"})
	if err != nil {
		h.t.Fatalf("create token for %s: %v", name, err)
	}
	return tok.Secret
}

// token creates a token of the given role in the tenant of the admin token adminTok.
func (h *harness) token(adminTok, role string) client.Token {
	h.t.Helper()
	tok, err := h.client(adminTok).CreateToken(context.Background(), client.CreateTokenRequest{Role: role})
	if err != nil {
		h.t.Fatalf("create %s token: %v", role, err)
	}
	return tok
}

// raw sends a request with a literal body and returns status and body.
func (h *harness) raw(method, path, tok, contentType, body string) (int, string) {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// snapshot counts what a failed request must not change: audit records, tenants, tokens,
// products and groups.
func (h *harness) snapshot() map[string]int {
	h.t.Helper()
	out := map[string]int{}
	for _, table := range []string{"audit_records", "audit_heads", "tenants", "api_tokens", "products", "device_groups", "devices",
		"programs", "researchers", "applications", "reports", "report_comments", "report_attachments", "report_events",
		"award_ledger", "report_releases", "report_coverage"} {
		var n int
		if err := storetest.DB(h.store).QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			h.t.Fatal(err)
		}
		out[table] = n
	}
	var revoked int
	storetest.DB(h.store).QueryRow("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NOT NULL").Scan(&revoked)
	out["revoked"] = revoked
	return out
}

// insertDevice puts a claimed device straight into the registry; enrolment and claiming come
// with attestation.
func (h *harness) insertDevice(tenantID, productID, groupID, id string) {
	h.t.Helper()
	_, err := storetest.DB(h.store).Exec(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'claimed', '', '1.0.0', '', 1, 1)`, id, tenantID, productID, groupID)
	if err != nil {
		h.t.Fatal(err)
	}
}

// updateKeys are a tenant's offline keys and root, as `rampart keys init` leaves them.
type updateKeys struct {
	ks   *tuf.KeySet
	root []byte
}

// updatesFor initialises signed updates for the tenant of adminTok (keys,
// roots, one image and a signed release 1.0.0 of product) and returns the
// image ID.
func (h *harness) updatesFor(adminTok, product string) string {
	h.t.Helper()
	k := h.keysInit(adminTok)
	return h.signedRelease(adminTok, k, product, "1.0.0", []byte("rootfs image of "+product))
}

// keysInit does what `rampart keys init` does for the tenant of adminTok.
func (h *harness) keysInit(adminTok string) updateKeys {
	h.t.Helper()
	ctx := context.Background()
	c := h.client(adminTok)
	ks, err := tuf.GenerateKeySet(1)
	if err != nil {
		h.t.Fatal(err)
	}
	keys, err := c.TUFOnlineKeys(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var online tuf.OnlinePublic
	for _, kv := range []struct {
		raw []byte
		dst **metadata.Key
	}{{keys.Snapshot, &online.Snapshot}, {keys.Timestamp, &online.Timestamp}, {keys.Director, &online.Director}} {
		*kv.dst = &metadata.Key{}
		if err := json.Unmarshal(kv.raw, *kv.dst); err != nil {
			h.t.Fatal(err)
		}
	}
	exp := time.Now().Add(24 * time.Hour)
	root, err := tuf.NewRoot(ks, 1, online, exp)
	if err != nil {
		h.t.Fatal(err)
	}
	droot, err := tuf.NewDirectorRoot(ks, 1, online.Director, exp)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := c.InitTUF(ctx, client.TUFRoots{Root: root, DirectorRoot: droot}); err != nil {
		h.t.Fatal(err)
	}
	return updateKeys{ks: ks, root: root}
}

// signedRelease uploads content as the rootfs image, creates the release
// and signs it offline, as `image add`, `release create` and `release sign` do.
func (h *harness) signedRelease(adminTok string, k updateKeys, product, version string, content []byte) string {
	h.t.Helper()
	ctx := context.Background()
	c := h.client(adminTok)
	im, err := c.AddImage(ctx, bytes.NewReader(content), int64(len(content)), "rootfs", version, 1)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := c.CreateRelease(ctx, product, client.CreateReleaseRequest{Version: version, Images: []string{im.ID}}); err != nil {
		h.t.Fatal(err)
	}
	payload, err := c.PrepareRelease(ctx, product, version)
	if err != nil {
		h.t.Fatal(err)
	}
	signed, err := tuf.SignTargets(k.root, payload.Targets, k.ks)
	if err != nil {
		h.t.Fatal(err)
	}
	rel, err := c.SignRelease(ctx, product, version, client.TargetsPayload{Targets: signed})
	if err != nil {
		h.t.Fatal(err)
	}
	if rel.State != release.StateSigned {
		h.t.Fatalf("release state %s", rel.State)
	}
	return im.ID
}
