package sim_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/device"
	"github.com/rampartsec/rampart/internal/cli/product"
	"github.com/rampartsec/rampart/internal/cli/sim"
	isim "github.com/rampartsec/rampart/internal/sim"
)

// TestSimWalk runs `rampart sim` against a separately started server as doc/demo.md shows:
// the devices enrol, are claimed into the product's group, attest (update-only: they run nothing
// the tenant released yet) and the summary counts them.
func TestSimWalk(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(product.Command, device.Command, sim.Command), srv, srv.Admin)
	c.OK("product", "create", "lamp")
	c.OK("product", "policy", "lamp", "--accept-software=true")
	dir := t.TempDir()

	out := c.OK("sim", "--devices", "4", "--product", "lamp", "--group", "Field Test", "--offline", "0.25",
		"--dir", dir, "--duration", "3s", "--interval", "1s", "--wait-timeout", "1s", "--output", "json")
	var p isim.Progress
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("summary %q: %v", out, err)
	}
	if p.Devices != 4 || p.Online != 3 || p.Enrolled != 4 || p.Attested != 3 || p.UpdateOnly != 3 || p.CheckIns < 3 {
		t.Errorf("summary: %s", p)
	}
	var list []client.Device
	if err := json.Unmarshal([]byte(c.OK("device", "list", "--product", "lamp", "--group", "Field Test", "--output", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 {
		t.Errorf("the server lists %d devices in lamp/Field Test, want 4", len(list))
	}

	// A second run continues with the same devices (state under --dir).
	out = c.OK("sim", "--devices", "4", "--product", "lamp", "--group", "Field Test", "--dir", dir, "--duration", "1s", "--output", "json")
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Enrolled != 4 {
		t.Errorf("second run: %s, %v", out, err)
	}
	if err := json.Unmarshal([]byte(c.OK("device", "list", "--product", "lamp", "--output", "json")), &list); err != nil || len(list) != 4 {
		t.Errorf("after the second run the server lists %d devices, want still 4 (%v)", len(list), err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "device-*")); len(matches) != 4 {
		t.Errorf("%d device folders, want 4", len(matches))
	}

	c.Fails("--devices", "sim", "--product", "lamp")
	c.Fails("--crash-rate", "sim", "--devices", "1", "--product", "lamp", "--crash-rate", "1.0.0")
}
