package backup_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/backup"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/sim"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/tuf"
)

func image(seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 9))
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestBackupUnderLoad follows doc/operations.md, Backups: while devices check in and releases
// are being added, `rampart backup` copies the server's data folder; `rampart restore` brings it
// back into a fresh folder, a server starts on it, the audit chain verifies, every device and
// every release the backup caught is there, and the devices check in with it. A damaged archive
// or a folder that is not empty is refused and nothing is created.
func TestBackupUnderLoad(t *testing.T) {
	ctx := context.Background()
	f := clitest.StartFleet(t, cli.Root)
	f.Release(t, "1.0.0", image(1))

	devices := t.TempDir()
	fleet, err := sim.New(ctx, sim.Config{Server: f.URL, RootCAs: f.Roots, Dir: devices, Devices: 3,
		Interval: time.Second, WaitTimeout: time.Second, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fleet.Claim(ctx, f.API, "lamp", "Production"); err != nil {
		t.Fatal(err)
	}
	if err := fleet.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	running := make(chan error, 1)
	go func() { running <- fleet.Run(rctx) }()
	f.Deploy(t, "1.0.0")
	testenv.WaitFor(t, "the devices running 1.0.0", func() bool { return fleet.Progress().Releases["1.0.0"] == 3 })

	// Releases keep being added (image add, release create, release sign) while the backup runs.
	stop := make(chan struct{})
	added := make(chan []string, 1)
	var signed atomic.Int32
	go func() {
		var done []string
		defer func() { added <- done }()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprintf("1.%d.0", i)
			path := filepath.Join(t.TempDir(), "rootfs.img")
			if err := os.WriteFile(path, image(uint64(100+i)), 0o644); err != nil {
				return
			}
			id, _, code := f.CLI.Run("image", "add", path, "--component", "rootfs", "--version", v, "--security-version", "1")
			if code != 0 {
				return
			}
			if _, _, code := f.CLI.Run("release", "create", "--product", "lamp", "--version", v, "--image", strings.TrimSpace(id)); code != 0 {
				return
			}
			if _, _, code := f.CLI.Run("release", "sign", "--product", "lamp", "--version", v, "--keys", f.Keys); code != 0 {
				return
			}
			done = append(done, v)
			signed.Add(1)
		}
	}()
	testenv.WaitFor(t, "a release signed under load", func() bool { return signed.Load() >= 1 })
	checkIns := fleet.Progress().CheckIns
	archive := filepath.Join(t.TempDir(), "rampart.backup")
	out := f.CLI.OK("backup", "--data", f.Dir, "--to", archive)
	if !strings.HasPrefix(out, "backed up "+f.Dir+" to "+archive+": ") {
		t.Errorf("backup printed %q", out)
	}
	// Let more happen after the backup too, so the server moves on past it.
	testenv.WaitFor(t, "check-ins during and after the backup", func() bool { return fleet.Progress().CheckIns >= checkIns+3 })
	close(stop)
	during := <-added
	cancel()
	<-running
	fleet.Close()
	t.Logf("backup: %s; releases signed meanwhile: %v; check-ins: %d", strings.TrimSpace(out), during, fleet.Progress().CheckIns)
	f.CLI.Fails("already exists; give a new file", "backup", "--data", f.Dir, "--to", archive)

	// A damaged archive is refused whole, and the folder is not made.
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.backup")
	b2 := append([]byte(nil), b...)
	b2[len(b2)/2] ^= 0xff
	if err := os.WriteFile(damaged, b2, 0o600); err != nil {
		t.Fatal(err)
	}
	nowhere := filepath.Join(t.TempDir(), "nowhere")
	f.CLI.Fails("is not a sound Rampart backup", "restore", "--from", damaged, "--data", nowhere)
	cut := filepath.Join(t.TempDir(), "cut.backup")
	if err := os.WriteFile(cut, b[:len(b)-2048], 0o600); err != nil {
		t.Fatal(err)
	}
	f.CLI.Fails("is not a sound Rampart backup", "restore", "--from", cut, "--data", nowhere)
	if _, err := os.Stat(nowhere); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left %s: %v", nowhere, err)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	out = f.CLI.OK("restore", "--from", archive, "--data", restored)
	if !strings.HasPrefix(out, "restored "+archive+" into "+restored+": ") {
		t.Errorf("restore printed %q", out)
	}
	f.CLI.Fails("is not empty; restore into a new or empty folder", "restore", "--from", archive, "--data", restored)

	if _, err := os.Stat(filepath.Join(restored, backup.RestoredFile)); err != nil {
		t.Fatalf("restore left no mark for the server to raise its TUF versions: %v", err)
	}
	r := clitest.StartConfig(t, func(c *server.Config) { c.DataDir = restored })
	if r.Admin != f.Admin {
		t.Fatalf("the restored folder's admin token is not the original's")
	}
	if _, err := os.Stat(filepath.Join(restored, backup.RestoredFile)); !os.IsNotExist(err) {
		t.Fatalf("the restored server left the restore mark: %v", err)
	}
	api, err := client.New(r.URL, client.WithToken(r.Admin), client.WithCAFile(r.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	v, err := api.VerifyAudit(ctx)
	if err != nil || !v.Intact || v.Records == 0 {
		t.Fatalf("audit verify on the restored server: %+v, %v", v, err)
	}
	devs, err := api.ListDevices(ctx, client.DeviceFilter{}, client.ListOptions{})
	if err != nil || len(devs.Items) != 3 {
		t.Fatalf("restored devices: %d, %v; want 3", len(devs.Items), err)
	}
	rels, err := api.ListReleases(ctx, "lamp", client.ListOptions{})
	if err != nil || len(rels.Items) < 2 || rels.Items[0].Version != "1.0.0" || rels.Items[0].State != "signed" {
		t.Fatalf("restored releases: %+v, %v; want 1.0.0 and those signed before the backup", rels.Items, err)
	}
	// Every image of every restored release is served by the restored server, whole.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.Roots}}}
	for _, rel := range rels.Items {
		for _, im := range rel.Images {
			resp, err := hc.Get(r.URL + "/tuf/default/targets/images/" + im.ID)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			sum := sha256.Sum256(body)
			if err != nil || resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != im.ID {
				t.Errorf("release %s image %s from the restored server: %d, %v", rel.Version, im.ID, resp.StatusCode, err)
			}
		}
	}
	t.Logf("restored: %d audit records, releases %d of the %d signed by the end", v.Records, len(rels.Items), len(during)+1)

	// The restored server signed its online metadata above anything the first could have
	// signed after the backup, and said so in the audit chain.
	raised, err := api.ListAudit(ctx, "tuf.versions.raise", client.ListOptions{})
	if err != nil || len(raised.Items) != 1 {
		t.Fatalf("tuf.versions.raise audit records: %+v, %v; want 1", raised.Items, err)
	}
	t.Logf("audit: %s %s", raised.Items[0].Action, raised.Items[0].Details)
	for _, d := range devs.Items {
		v, _, err := r.Service.Store().DirectorVersion(ctx, f.TenantID, d.ID)
		if err != nil || v <= tuf.RestoreMargin {
			t.Errorf("device %s's director metadata after the restore: version %d, %v; want above %d", d.ID, v, err, tuf.RestoreMargin)
		}
	}

	// As doc/operations.md says: the releases signed after the backup are lost and devices may
	// have fetched their targets, which only the offline keys can outdo; sign one again before
	// the devices come back.
	rf := &clitest.Fleet{Server: r, CLI: clitest.New(t, cli.Root, r, r.Admin), API: api, Roots: f.Roots, Keys: f.Keys,
		TenantID: f.TenantID, Deployment: f.Deployment}
	rf.CLI.Env["RAMPART_KEYS_PASSPHRASE"] = "test passphrase"
	rf.Release(t, "2.0.0", image(200))
	rf.Deploy(t, "2.0.0")

	// The devices, their state as it is after the backup, check in with the restored server
	// without a single refusal, and install the release signed after the restore.
	again, err := sim.New(ctx, sim.Config{Server: r.URL, RootCAs: f.Roots, Dir: devices, Devices: 3,
		Interval: time.Second, WaitTimeout: time.Second, Seed: 12, Logger: slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := again.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if p := again.Progress(); p.Enrolled != 3 || p.Attested != 3 || p.CheckIns < 3 || p.Errors != 0 {
		t.Fatalf("devices against the restored server: %s", p)
	}
	rctx, cancel = context.WithCancel(ctx)
	go func() { running <- again.Run(rctx) }()
	testenv.WaitFor(t, "the devices running 2.0.0 from the restored server", func() bool { return again.Progress().Releases["2.0.0"] == 3 })
	cancel()
	<-running
	if p := again.Progress(); p.Errors != 0 || p.FailedInstalls != 0 {
		t.Fatalf("devices updating from the restored server: %s", p)
	}
	t.Logf("devices after the restore: %s", again.Progress())
}

// tlog writes the devices' log lines to the test's log, but for their long-poll's.
type tlog struct{ t *testing.T }

func (w tlog) Write(b []byte) (int, error) {
	if !strings.Contains(string(b), " msg=wait ") {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}
