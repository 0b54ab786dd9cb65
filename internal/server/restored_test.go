package server_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/certpool"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/sim"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/tuf"
)

// TestRestoredFlag is the PostgreSQL side of a restore (doc/operations.md, Backups): a replica
// started with --restored on the database raises the TUF versions before it serves (audited,
// every device's director metadata above the margin), and a device that fetched the metadata
// before keeps checking in and installs a release signed afterwards, without an error.
func TestRestoredFlag(t *testing.T) {
	ctx := context.Background()
	url := storetest.PostgresURL(t)
	a := clitest.StartFleet(t, cli.Root, func(c *server.Config) { c.Database = url })
	a.Release(t, "1.0.0", []byte("release 1.0.0"))
	devices := t.TempDir()
	f := a.Sim(t, sim.Config{Dir: devices, Devices: 1, Interval: time.Second, WaitTimeout: time.Second, Seed: 7})
	a.Deploy(t, "1.0.0")
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stop := clitest.RunSim(t, f)
	testenv.WaitFor(t, "the device running 1.0.0", func() bool { return f.Progress().Releases["1.0.0"] == 1 })
	stop()
	f.Close()

	b := clitest.StartConfig(t, func(c *server.Config) {
		c.Database, c.Restored = url, true
		c.MasterKeyFile = filepath.Join(a.Dir, server.MasterKeyFile)
		c.OnlineKeysFile = filepath.Join(a.Dir, server.OnlineKeysFile)
	})
	raised, err := a.API.ListAudit(ctx, "tuf.versions.raise", client.ListOptions{})
	if err != nil || len(raised.Items) != 1 {
		t.Fatalf("tuf.versions.raise records: %+v, %v; want 1", raised.Items, err)
	}
	devs, err := a.API.ListDevices(ctx, client.DeviceFilter{}, client.ListOptions{})
	if err != nil || len(devs.Items) != 1 {
		t.Fatalf("devices: %+v, %v", devs.Items, err)
	}
	if v, _, err := b.Service.Store().DirectorVersion(ctx, a.TenantID, devs.Items[0].ID); err != nil || v <= tuf.RestoreMargin {
		t.Fatalf("director version after --restored: %d, %v; want above %d", v, err, tuf.RestoreMargin)
	}

	a.Release(t, "1.1.0", []byte("release 1.1.0"))
	a.Deploy(t, "1.1.0")
	roots, err := certpool.FromFile(b.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	g, err := sim.New(ctx, sim.Config{Server: b.URL, RootCAs: roots, Dir: devices, Devices: 1,
		Interval: time.Second, WaitTimeout: time.Second, Seed: 8, Logger: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	clitest.RunSim(t, g)
	testenv.WaitFor(t, "the device running 1.1.0 through the restored replica", func() bool { return g.Progress().Releases["1.1.0"] == 1 })
	if p := g.Progress(); p.Errors != 0 {
		t.Fatalf("device against the restored replica: %s", p)
	}
}

type testLog struct{ t *testing.T }

func (w testLog) Write(b []byte) (int, error) {
	if !strings.Contains(string(b), " msg=wait ") {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}
