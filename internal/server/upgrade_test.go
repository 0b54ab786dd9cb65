package server_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/certpool"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/sim"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// fixture is a data folder, the devices' state and the offline keys as the code of an older
// commit left them (testdata/upgrade/make.sh says how they were made, COMMIT which commit).
const fixture = "testdata/upgrade"

// copyTree copies the folder src to dst, keeping modes.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(out, info.Mode().Perm()|0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeFromPreviousRelease starts the current server on the previous release's data
// folder: it applies the migrations that release lacked and serves what it held. The audit chain
// verifies across the upgrade, the devices and the signed release are there, a new release signed
// with the old offline keys is installed by the old devices (real agents, with their state from
// then) through the upgraded server.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	ctx := context.Background()
	commit, err := os.ReadFile(filepath.Join(fixture, "COMMIT"))
	if err != nil {
		t.Fatal(err)
	}
	dir, devices := t.TempDir(), t.TempDir()
	copyTree(t, filepath.Join(fixture, "data"), dir)
	copyTree(t, filepath.Join(fixture, "devices"), devices)
	before := schema(t, filepath.Join(dir, "rampart.db"))

	keys := t.TempDir()
	copyTree(t, filepath.Join(fixture, "keys"), keys)
	f := &clitest.Fleet{Server: clitest.StartConfig(t, func(c *server.Config) { c.DataDir = dir }), Keys: keys}
	if f.Admin == "" {
		t.Fatal("the fixture's admin token did not come along")
	}
	f.CLI = clitest.New(t, cli.Root, f.Server, f.Admin)
	f.CLI.Env["RAMPART_KEYS_PASSPHRASE"] = "upgrade fixture passphrase"
	if f.API, err = client.New(f.URL, client.WithToken(f.Admin), client.WithCAFile(f.CAFile)); err != nil {
		t.Fatal(err)
	}
	if f.Roots, err = certpool.FromFile(f.CAFile); err != nil {
		t.Fatal(err)
	}
	tn, err := f.Service.Store().TenantByName(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	f.TenantID = tn.ID
	after, err := f.Service.Store().SchemaVersion(ctx)
	if err != nil || after <= before[len(before)-1] {
		t.Fatalf("schema after the upgrade: %d, %v; the fixture (commit %s) was at %d", after, err, strings.TrimSpace(string(commit)), before[len(before)-1])
	}
	t.Logf("upgraded a database of commit %s from migration %04d to %04d", strings.TrimSpace(string(commit)), before[len(before)-1], after)

	v, err := f.API.VerifyAudit(ctx)
	if err != nil || !v.Intact || v.Records < 20 {
		t.Fatalf("audit verify after the upgrade: %+v, %v", v, err)
	}
	devs, err := f.API.ListDevices(ctx, client.DeviceFilter{}, client.ListOptions{})
	if err != nil || len(devs.Items) != 2 {
		t.Fatalf("devices after the upgrade: %d, %v; want 2", len(devs.Items), err)
	}
	for _, d := range devs.Items {
		if d.CurrentRelease != "1.0.0" || d.Product != "lamp" || d.Group != "Production" {
			t.Errorf("device after the upgrade: %+v", d)
		}
	}
	rels, err := f.API.ListReleases(ctx, "lamp", client.ListOptions{})
	if err != nil || len(rels.Items) != 1 || rels.Items[0].Version != "1.0.0" || rels.Items[0].State != "signed" {
		t.Fatalf("releases after the upgrade: %+v, %v", rels.Items, err)
	}

	// The fixture's roots (image repository and director) expire on the date make.sh gave them,
	// a year after it ran; devices refuse an expired root. So, as an operator keeps a fleet's roots
	// current, the old root keys sign new roots (a root key added), which the old devices walk to.
	// Only the new root's date is checked, so this works before and after the fixture's expires.
	var fixtureRoot struct {
		Signed struct {
			Version int64     `json:"version"`
			Expires time.Time `json:"expires"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(mustRead(t, filepath.Join(keys, "root.json")), &fixtureRoot); err != nil {
		t.Fatal(err)
	}
	if out := f.CLI.OK("keys", "rotate", "--dir", keys, "--add-root", "1"); !strings.HasPrefix(out, "root version 2:") {
		t.Fatalf("keys rotate printed %q", out)
	}
	t.Logf("the fixture's root (version %d) expires %s; rotated to version 2", fixtureRoot.Signed.Version, fixtureRoot.Signed.Expires.Format(time.RFC3339))

	// The old offline keys sign a new release; the old devices install it.
	img := make([]byte, 4096)
	copy(img, "release 1.1.0, signed after the upgrade")
	f.Release(t, "1.1.0", img)
	// The old release's emergency deployment is still open; Deploy ends it first.
	if err := storetest.DB(f.Service.Store()).QueryRowContext(ctx, `SELECT id FROM deployments WHERE state = 'active'`).Scan(&f.Deployment); err != nil {
		t.Fatalf("the fixture's open deployment: %v", err)
	}
	f.Deploy(t, "1.1.0")

	// The fixture's device certificates were valid for a day from when make.sh ran; on any
	// later day they have expired, and the devices enrol again with their identity keys, as a
	// fleet that was off across an upgrade does. So that both paths run whatever the date, device
	// 2's certificate is replaced by one for the same key that expired a day ago; device 1 keeps
	// the fixture's (valid on the fixture's day only).
	own := deviceCert(t, filepath.Join(devices, "device-000001", "device-cert.pem"))
	t.Logf("device 1's certificate from the fixture: valid until %s (expired: %v)", own.NotAfter.Format(time.RFC3339), time.Now().After(own.NotAfter))
	expirePath := filepath.Join(devices, "device-000002", "device-cert.pem")
	old := deviceCert(t, expirePath)
	auth, err := f.Service.CAs().Existing(ctx, f.TenantID, "default")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(old.URIs[0].Path, "/device/")
	expired, err := auth.Issue(id, old.PublicKey, ca.ProfileNormal, time.Now().Add(-ca.DeviceCertValidity-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(expirePath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: expired.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	fleet, err := sim.New(ctx, sim.Config{Server: f.URL, RootCAs: f.Roots, Dir: devices, Devices: 2,
		Interval: time.Second, WaitTimeout: time.Second, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	if err := fleet.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fleet.Run(rctx) }()
	defer func() { cancel(); <-done }()
	testenv.WaitFor(t, "the old devices installing 1.1.0 through the upgraded server", func() bool { return fleet.Progress().Releases["1.1.0"] == 2 })
	for _, d := range []string{"device-000001", "device-000002"} {
		for _, role := range []string{"repo", "director"} {
			var root struct {
				Signed struct {
					Version int64 `json:"version"`
				} `json:"signed"`
			}
			if err := json.Unmarshal(mustRead(t, filepath.Join(devices, d, "update", role, "root.json")), &root); err != nil || root.Signed.Version != 2 {
				t.Errorf("%s trusts %s root version %d (%v); want 2", d, role, root.Signed.Version, err)
			}
		}
	}
	if renewed := deviceCert(t, expirePath); !time.Now().Before(renewed.NotAfter) || !renewed.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(old.PublicKey) {
		t.Errorf("device 2, its certificate expired, has %s valid until %s; want a fresh one for its key", renewed.Subject, renewed.NotAfter)
	}
	if v, err := f.API.VerifyAudit(ctx); err != nil || !v.Intact {
		t.Errorf("audit verify at the end: %+v, %v", v, err)
	}
}

// mustRead reads a file.
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deviceCert reads a device's certificate file.
func deviceCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNewerDatabaseRefused: the server refuses, in one sentence, a database a newer Rampart
// migrated, and leaves it as it was.
func TestNewerDatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, filepath.Join(fixture, "data"), dir)
	db, err := sql.Open("sqlite", filepath.Join(dir, "rampart.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9990, 'later_feature', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := schema(t, filepath.Join(dir, "rampart.db"))
	_, err = server.New(context.Background(), server.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	msg, ok := public.Message(err)
	want := "the database was migrated by a newer Rampart (migration 9990_later_feature is unknown to this version); run that version or a later one"
	if !ok || msg != want {
		t.Fatalf("server.New on a newer database: %v; sentence %q, want %q", err, msg, want)
	}
	if after := schema(t, filepath.Join(dir, "rampart.db")); len(after) != len(before) {
		t.Fatalf("the refused start changed the schema: %v, then %v", before, after)
	}
}

// schema lists a database's applied migrations, in order.
func schema(t *testing.T, path string) []int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}
