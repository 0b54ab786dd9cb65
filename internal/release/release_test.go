package release

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tuf"
)

type fixture struct {
	t      testing.TB
	svc    *Service
	st     *store.Store
	tenant store.Tenant
	ks     *tuf.KeySet
	device string
	srv    *httptest.Server
	slots  string
	state  string
}

func newFixture(t testing.TB, kind string) *fixture {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t, kind)
	tenant, _, _, err := st.Bootstrap(ctx, "acme", "hash-of-a-token")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateProduct(ctx, store.System, tenant.ID, "gateway", ""); err != nil {
		t.Fatal(err)
	}
	device := strings.Repeat("ab", 32)
	if _, err := storetest.DB(st).Exec(`INSERT INTO devices (id, tenant_id, state, attestation, current_release, target_release, created_at, updated_at)
		VALUES ($1, $2, 'claimed', '', '', '', 1, 1)`, device, tenant.ID); err != nil {
		t.Fatal(err)
	}
	online, err := tuf.GenerateOnlineKeys()
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := OpenBlobs(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Store: st, Blobs: blobs, Online: online})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, svc: svc, st: st, tenant: tenant, device: device, slots: filepath.Join(t.TempDir(), "slots"), state: filepath.Join(t.TempDir(), "state")}
	mux := http.NewServeMux()
	mux.Handle("/tuf/", svc.Handler())
	mux.HandleFunc("GET /director/{device}/{file}", func(w http.ResponseWriter, r *http.Request) {
		b, err := svc.DirectorFile(r.Context(), tenant.ID, r.PathValue("device"), r.PathValue("file"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// keysInit is what `rampart keys init` does: generate offline keys, sign the
// roots for the server's online keys, upload them.
func (f *fixture) keysInit() {
	f.t.Helper()
	ks, err := tuf.GenerateKeySet(1)
	if err != nil {
		f.t.Fatal(err)
	}
	f.ks = ks
	now := f.svc.now()
	exp := tuf.DefaultExpiry()
	root, err := tuf.NewRoot(ks, 1, f.svc.OnlinePublic(), now.Add(exp.Root))
	if err != nil {
		f.t.Fatal(err)
	}
	droot, err := tuf.NewDirectorRoot(ks, 1, f.svc.OnlinePublic().Director, now.Add(exp.Root))
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.svc.Init(context.Background(), store.System, f.tenant.ID, root, droot); err != nil {
		f.t.Fatal(err)
	}
}

// release adds the image, creates the release and signs it as the CLI does.
func (f *fixture) release(version string, content []byte) Release {
	f.t.Helper()
	ctx := context.Background()
	im, err := f.svc.AddImage(ctx, store.System, f.tenant.ID, bytes.NewReader(content), "rootfs", version, 1)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.svc.CreateRelease(ctx, store.System, f.tenant.ID, "gateway", version, []string{im.SHA256}); err != nil {
		f.t.Fatal(err)
	}
	payload, err := f.svc.PrepareSign(ctx, f.tenant.ID, "gateway", version)
	if err != nil {
		f.t.Fatal(err)
	}
	root, _, err := f.svc.Roots(ctx, f.tenant.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	signed, err := tuf.SignTargets(root, payload, f.ks)
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := f.svc.Sign(ctx, store.System, f.tenant.ID, "gateway", version, signed)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) agent() (update.Outcome, error) {
	f.t.Helper()
	root, droot, err := f.svc.Roots(context.Background(), f.tenant.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	slots, err := update.OpenSlots(f.slots, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	u, err := update.New(update.Config{
		DeviceID: f.device, RepoURL: f.srv.URL + "/tuf/acme", DirectorURL: f.srv.URL + "/director/" + f.device,
		RepoRoot: root, DirectorRoot: droot, StateDir: f.state, Slots: slots, HTTPClient: f.srv.Client(),
		Reporter: svcReporter{f},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return u.RunOnce(context.Background())
}

// svcReporter hands the agent's install states straight to the service,
// as the device API does.
type svcReporter struct{ f *fixture }

func (r svcReporter) Report(ctx context.Context, s update.Status) error {
	_, err := r.f.svc.ReportInstall(ctx, r.f.tenant.ID, r.f.device, InstallReport{State: string(s.State), Release: s.Release, Reason: s.Reason})
	return err
}

func binary(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestReleaseLifecycle is the scenario through the service: keys,
// images, releases 1.0.0 and 1.1.0 signed offline, an agent installing
// 1.0.0 and then 1.1.0 by delta, and 1.0.0 pushed back being refused.
func TestReleaseLifecycle(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) { testReleaseLifecycle(t, newFixture(t, kind)) })
	}
}

func testReleaseLifecycle(t *testing.T, f *fixture) {
	ctx := context.Background()
	if _, err := f.svc.AddImage(ctx, store.System, f.tenant.ID, bytes.NewReader([]byte("x")), "rootfs", "1.0.0", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PrepareSign(ctx, f.tenant.ID, "gateway", "9.9.9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("PrepareSign of an unknown release: %v", err)
	}
	f.keysInit()
	v1 := binary(1, 512<<10)
	v2 := append(append([]byte(nil), v1[:300<<10]...), binary(2, 4<<10)...)
	v2 = append(v2, v1[300<<10:]...)
	r1 := f.release("1.0.0", v1)
	if r1.State != StateSigned || len(r1.Deltas) != 0 {
		t.Fatalf("release 1.0.0 = %+v", r1)
	}
	if err := f.svc.Assign(ctx, store.System, f.tenant.ID, f.device, "gateway", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	out, err := f.agent()
	if err != nil || !out.Committed || out.Release != "1.0.0" {
		t.Fatalf("agent install 1.0.0: %+v, %v", out, err)
	}
	r2 := f.release("1.1.0", v2)
	if len(r2.Deltas) != 1 || r2.Deltas[0].Length > int64(len(v2))/5 {
		t.Fatalf("release 1.1.0 deltas = %+v", r2.Deltas)
	}
	if err := f.svc.Assign(ctx, store.System, f.tenant.ID, f.device, "gateway", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	out, err = f.agent()
	if err != nil {
		t.Fatalf("agent install 1.1.0: %v", err)
	}
	if diff := cmp.Diff(out, update.Outcome{Release: "1.1.0", Installed: true, Committed: true, Delta: []string{"rootfs"}}); diff != "" {
		t.Errorf("outcome (-got +want):\n%s", diff)
	}
	if err := f.svc.Assign(ctx, store.System, f.tenant.ID, f.device, "gateway", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.agent(); !errors.Is(err, update.ErrRollback) {
		t.Fatalf("push 1.0.0 back: %v, want ErrRollback", err)
	}
	// Revoked releases stay in history and can no longer be assigned.
	rv, err := f.svc.Revoke(ctx, store.System, f.tenant.ID, "gateway", "1.0.0", "CVE-2026-0001")
	if err != nil || rv.State != StateRevoked || rv.RevokedReason != "CVE-2026-0001" {
		t.Fatalf("Revoke: %+v, %v", rv, err)
	}
	if err := f.svc.Assign(ctx, store.System, f.tenant.ID, f.device, "gateway", "1.0.0"); !errors.Is(err, ErrWrongState) {
		t.Fatalf("Assign revoked: %v, want ErrWrongState", err)
	}
	got, err := f.svc.GetRelease(ctx, f.tenant.ID, "gateway", "1.0.0")
	if err != nil || got.State != StateRevoked {
		t.Fatalf("GetRelease after revoke: %+v, %v", got, err)
	}
	v, err := f.st.VerifyAudit(ctx, f.tenant.ID)
	if err != nil || v.Records < 8 {
		t.Fatalf("audit chain: %+v, %v", v, err)
	}
}

func TestServiceRefuses(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) { testServiceRefuses(t, newFixture(t, kind)) })
	}
}

func testServiceRefuses(t *testing.T, f *fixture) {
	ctx := context.Background()
	f.keysInit()
	r := f.release("1.0.0", binary(3, 10<<10))
	im := r.Images[0]
	other, err := f.svc.AddImage(ctx, store.System, f.tenant.ID, bytes.NewReader(binary(4, 100)), "app", "1.0.0", 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
		is   error
	}{
		{"init twice", func() error {
			root, droot, _ := f.svc.Roots(ctx, f.tenant.ID)
			return f.svc.Init(ctx, store.System, f.tenant.ID, root, droot)
		}, ErrConflict},
		{"bad component", func() error {
			_, err := f.svc.AddImage(ctx, store.System, f.tenant.ID, strings.NewReader("x"), "../etc", "1.0.0", 0)
			return err
		}, ErrInvalid},
		{"bad version", func() error {
			_, err := f.svc.AddImage(ctx, store.System, f.tenant.ID, strings.NewReader("x"), "app", "latest", 0)
			return err
		}, ErrInvalid},
		{"same bytes other attributes", func() error {
			_, err := f.svc.AddImage(ctx, store.System, f.tenant.ID, bytes.NewReader(binary(3, 10<<10)), "rootfs", "2.0.0", 1)
			return err
		}, ErrConflict},
		{"release of unknown image", func() error {
			_, err := f.svc.CreateRelease(ctx, store.System, f.tenant.ID, "gateway", "2.0.0", []string{strings.Repeat("0", 64)})
			return err
		}, ErrNotFound},
		{"release of unknown product", func() error {
			_, err := f.svc.CreateRelease(ctx, store.System, f.tenant.ID, "toaster", "2.0.0", []string{im.SHA256})
			return err
		}, ErrNotFound},
		{"two images of a component", func() error {
			_, err := f.svc.CreateRelease(ctx, store.System, f.tenant.ID, "gateway", "2.0.0", []string{im.SHA256, im.SHA256})
			return err
		}, ErrInvalid},
		{"release version twice", func() error {
			_, err := f.svc.CreateRelease(ctx, store.System, f.tenant.ID, "gateway", "1.0.0", []string{other.SHA256})
			return err
		}, ErrConflict},
		{"sign twice", func() error { _, err := f.svc.PrepareSign(ctx, f.tenant.ID, "gateway", "1.0.0"); return err }, ErrWrongState},
		{"revoke without reason", func() error {
			_, err := f.svc.Revoke(ctx, store.System, f.tenant.ID, "gateway", "1.0.0", " ")
			return err
		}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.is) {
				t.Fatalf("error = %v, want %v", err, tc.is)
			}
		})
	}

	// Targets signed for a release that do not list its images are refused.
	if _, err := f.svc.CreateRelease(ctx, store.System, f.tenant.ID, "gateway", "1.1.0", []string{other.SHA256}); err != nil {
		t.Fatal(err)
	}
	root, _, _ := f.svc.Roots(ctx, f.tenant.ID)
	repoRow, _ := f.svc.loadRepo(ctx, f.tenant.ID)
	repo, _ := tuf.OpenRepository(repoRow.state, f.svc.cfg.Online, f.svc.cfg.Expiry)
	payload, err := repo.NextTargets(nil, nil, f.svc.now())
	if err != nil {
		t.Fatal(err)
	}
	signed, err := tuf.SignTargets(root, payload, f.ks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Sign(ctx, store.System, f.tenant.ID, "gateway", "1.1.0", signed); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Sign with targets lacking the images: %v, want ErrInvalid", err)
	}
	// Targets signed by a stranger's keys are refused.
	stranger, _ := tuf.GenerateKeySet(1)
	if _, err := tuf.SignTargets(root, payload, stranger); !errors.Is(err, tuf.ErrThreshold) {
		t.Fatalf("stranger signing: %v", err)
	}
	// An oversized upload is refused and leaves no blob behind.
	small, err := New(Config{Store: f.st, Blobs: f.svc.cfg.Blobs, Online: f.svc.cfg.Online, MaxImageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.AddImage(ctx, store.System, f.tenant.ID, strings.NewReader(strings.Repeat("x", 11)), "app", "3.0.0", 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized upload: %v, want ErrTooLarge", err)
	}
}

func TestRefreshOnlineRoles(t *testing.T) {
	f := newFixture(t, "sqlite")
	f.keysInit()
	f.release("1.0.0", binary(5, 1000))
	ctx := context.Background()
	before, err := f.svc.RepoFile(ctx, f.tenant.ID, "timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	same, _ := f.svc.RepoFile(ctx, f.tenant.ID, "timestamp.json")
	if !bytes.Equal(before, same) {
		t.Error("Refresh re-signed a fresh timestamp")
	}
	later := f.svc.now().Add(20 * 60 * 60 * 1e9)
	f.svc.cfg.Now = func() time.Time { return later }
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := f.svc.RepoFile(ctx, f.tenant.ID, "timestamp.json")
	if bytes.Equal(before, after) {
		t.Error("Refresh did not re-sign a timestamp past half its lifetime")
	}
}

func TestRefreshDirector(t *testing.T) {
	f := newFixture(t, "sqlite")
	f.keysInit()
	f.release("1.0.0", binary(6, 1000))
	ctx := context.Background()
	if err := f.svc.Assign(ctx, store.System, f.tenant.ID, f.device, "gateway", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	v1, exp1, err := f.svc.DirectorVersion(ctx, f.tenant.ID, f.device)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := f.svc.DirectorVersion(ctx, f.tenant.ID, f.device); v != v1 {
		t.Errorf("fresh director metadata re-issued: version %d, was %d", v, v1)
	}
	// Past half-life, even for a release revoked since, it is re-issued
	// with a higher version and a later expiry.
	if _, err := f.svc.Revoke(ctx, store.System, f.tenant.ID, "gateway", "1.0.0", "CVE-2026-0002"); err != nil {
		t.Fatal(err)
	}
	later := f.svc.now().Add(13 * time.Hour)
	f.svc.cfg.Now = func() time.Time { return later }
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	v2, exp2, err := f.svc.DirectorVersion(ctx, f.tenant.ID, f.device)
	if err != nil {
		t.Fatal(err)
	}
	if v2 != v1+1 || !exp2.After(exp1) {
		t.Errorf("after refresh: version %d expiry %s, was %d %s", v2, exp2, v1, exp1)
	}
}

// TestDirectorFollowsDeployment: an emergency deployment of 1.1.0 to the
// device's group makes the director name 1.1.0 at the device's next poll,
// and the agent installs it.
func TestDirectorFollowsDeployment(t *testing.T) {
	f := newFixture(t, "sqlite")
	ctx := context.Background()
	f.keysInit()
	p, err := f.st.ProductByName(ctx, f.tenant.ID, "gateway")
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.st.GroupByName(ctx, f.tenant.ID, "gateway", "Production")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.DB(f.st).Exec(`UPDATE devices SET product_id = $1, group_id = $2 WHERE id = $3`, p.ID, g.ID, f.device); err != nil {
		t.Fatal(err)
	}
	v1 := binary(8, 64<<10)
	f.release("1.0.0", v1)
	f.release("1.1.0", append(append([]byte(nil), v1...), binary(9, 100)...))
	if err := f.svc.Assign(ctx, store.System, f.tenant.ID, f.device, "gateway", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if out, err := f.agent(); err != nil || out.Release != "1.0.0" {
		t.Fatalf("install 1.0.0: %+v, %v", out, err)
	}
	if _, err := f.st.CreateDeployment(ctx, store.System, f.tenant.ID, store.DeploymentSpec{
		Product: "gateway", Group: "Production", Release: "1.1.0", Plan: rollout.DefaultPlan(), Criteria: rollout.DefaultCriteria(), Emergency: true,
	}); err != nil {
		t.Fatal(err)
	}
	out, err := f.agent()
	if err != nil || !out.Committed || out.Release != "1.1.0" || len(out.Delta) != 1 {
		t.Fatalf("install through the deployment: %+v, %v", out, err)
	}
	d, err := f.st.DeviceByID(ctx, f.tenant.ID, f.device)
	if err != nil || d.CurrentRelease != "1.1.0" || d.TargetRelease != "1.1.0" {
		t.Fatalf("device after the deployment: %+v, %v", d, err)
	}
	var install string
	if err := storetest.DB(f.st).QueryRow(`SELECT install FROM deployment_devices WHERE device_id = $1`, f.device).Scan(&install); err != nil || install != "installed" {
		t.Errorf("deployment outcome = %q, %v; want installed", install, err)
	}
}

// TestDirectorTimestampBeforeItsColumn serves timestamp.json from a director row written before
// migration 0201 gave the timestamp a column of its own (the column is NULL there).
func TestDirectorTimestampBeforeItsColumn(t *testing.T) {
	f := newFixture(t, "sqlite")
	ctx := context.Background()
	f.keysInit()
	f.release("1.0.0", binary(8, 4<<10))
	if err := f.svc.Assign(ctx, store.System, f.tenant.ID, f.device, "gateway", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	want, err := f.svc.DirectorFile(ctx, f.tenant.ID, f.device, "timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.DB(f.st).Exec(`UPDATE director_metadata SET timestamp_file = NULL WHERE device_id = $1`, f.device); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.DirectorFile(ctx, f.tenant.ID, f.device, "timestamp.json")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("timestamp.json from the files column: %v; equal %v", err, bytes.Equal(got, want))
	}
	if _, err := f.svc.DirectorFile(ctx, f.tenant.ID, f.device, "nothing.json"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown director file: %v, want ErrNotFound", err)
	}
	if _, err := f.svc.DirectorFile(ctx, f.tenant.ID, strings.Repeat("0", 64), "timestamp.json"); !errors.Is(err, ErrUnregistered) {
		t.Errorf("an unregistered device: %v, want ErrUnregistered", err)
	}
}

// fakeAffected is an in-memory AffectedLister.
type fakeAffected map[string][]store.AffectedRelease

func (f fakeAffected) AffectedReleases(_ context.Context, _ string, product string) ([]store.AffectedRelease, error) {
	return f[product], nil
}

func TestRevokeAffected(t *testing.T) {
	f := newFixture(t, "sqlite")
	ctx := context.Background()
	f.keysInit()
	f.release("1.0.0", binary(20, 1000))
	f.release("1.1.0", binary(21, 1000))
	f.release("1.2.0", binary(22, 1000))
	if _, err := f.svc.Revoke(ctx, store.System, f.tenant.ID, "gateway", "1.1.0", "earlier"); err != nil {
		t.Fatal(err)
	}
	lister := fakeAffected{"gateway": {
		{Version: "0.9.0", Reports: []int64{3}, FixedIn: []string{"1.2.0"}}, // never released here
		{Version: "1.0.0", Reports: []int64{3, 4}, FixedIn: []string{"1.2.0"}},
		{Version: "1.1.0", Reports: []int64{4}, FixedIn: []string{"1.2.0"}}, // already revoked
	}}
	got, err := f.svc.RevokeAffected(ctx, store.System, f.tenant.ID, "gateway", lister)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Version != "1.0.0" || got[0].RevokedReason != "affected by report #3, #4; fixed in 1.2.0" {
		t.Fatalf("revoked = %+v", got)
	}
	if r, _ := f.svc.GetRelease(ctx, f.tenant.ID, "gateway", "1.1.0"); r.RevokedReason != "earlier" {
		t.Errorf("an already revoked release changed: %+v", r)
	}
	if r, _ := f.svc.GetRelease(ctx, f.tenant.ID, "gateway", "1.2.0"); r.State != StateSigned {
		t.Errorf("the fix was revoked: %+v", r)
	}
	// Running it again revokes nothing more.
	if again, err := f.svc.RevokeAffected(ctx, store.System, f.tenant.ID, "gateway", lister); err != nil || len(again) != 0 {
		t.Errorf("second run: %+v, %v", again, err)
	}
}

// TestRootRefusalSentence pins what an API client reads when a root it uploads is refused: tuf's
// public sentence after "refused: ", with no function names.
func TestRootRefusalSentence(t *testing.T) {
	f := newFixture(t, "sqlite")
	f.keysInit()
	ctx := context.Background()
	root, _, err := f.svc.Roots(ctx, f.tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The current root again, as if the rotation had not been made.
	err = f.svc.AddRoot(ctx, store.System, f.tenant.ID, root, nil)
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, tuf.ErrVerify) {
		t.Fatalf("AddRoot(current root) = %v, want ErrInvalid and tuf.ErrVerify", err)
	}
	const want = "refused: the new root must be version 2, not 1"
	if msg, ok := public.Message(err); !ok || msg != want || public.KindOf(err) != public.Invalid {
		t.Errorf("public sentence %q (%v, %v), want %q (invalid)", msg, ok, public.KindOf(err), want)
	}
}
