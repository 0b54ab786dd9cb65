package release_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/agent/command"
	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/device"
	"github.com/rampartsec/rampart/internal/cli/image"
	"github.com/rampartsec/rampart/internal/cli/keys"
	"github.com/rampartsec/rampart/internal/cli/product"
	"github.com/rampartsec/rampart/internal/cli/release"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
)

// agent runs rampart-agent in-process with a software attester.
func agent(t *testing.T, srv *clitest.Server, state string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"--server", srv.URL, "--ca-file", srv.CAFile, "--state", state, "--attester", "software"}, args...)
	err := command.Run(context.Background(), full, "test", &out, &errb)
	return out.String() + errb.String(), err
}

// TestIssueDoneWalk is the issue's "done when", with the real binaries'
// code in-process: keys, an image, releases 1.0.0 and 1.1.0 signed
// offline; a device (software attester) enrolled and claimed installs
// 1.0.0 and then 1.1.0 by delta through deployments, ending committed on
// 1.1.0; a deployment of 1.0.0 is refused by the agent.
func TestIssueDoneWalk(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(keys.Command, image.Command, release.Command, product.Command, device.Command), srv, srv.Admin)
	c.Env["RAMPART_KEYS_PASSPHRASE"] = "walk passphrase"
	work := t.TempDir()
	keysDir := filepath.Join(work, "keys")
	ctx := context.Background()

	c.OK("product", "create", "gateway")
	c.OK("product", "policy", "gateway", "--accept-software=true")
	c.OK("keys", "init", "--dir", keysDir)
	v1 := writeImage(t, filepath.Join(work, "rootfs-1.0.0.img"), 11, nil)
	writeImage(t, filepath.Join(work, "rootfs-1.1.0.img"), 12, v1)
	id1 := strings.TrimSpace(c.OK("image", "add", filepath.Join(work, "rootfs-1.0.0.img"), "--component", "rootfs", "--version", "1.0.0", "--security-version", "1"))
	c.OK("release", "create", "--product", "gateway", "--version", "1.0.0", "--image", id1)
	c.OK("release", "sign", "--product", "gateway", "--version", "1.0.0", "--keys", keysDir)

	state := t.TempDir()
	out, err := agent(t, srv, state, "enroll")
	if err != nil {
		t.Fatalf("enroll: %v %s", err, out)
	}
	dev := strings.TrimSpace(out)
	c.OK("device", "claim", dev, "--product", "gateway", "--group", "Production")
	// The device is pinned to the roots keys init wrote.
	runArgs := []string{"run", "--once", "--slots", filepath.Join(state, "slots"),
		"--repo-root", filepath.Join(keysDir, "root.json"), "--director-root", filepath.Join(keysDir, "director-root.json")}

	// Deployments until the CLI has them: straight through the store.
	st, err := store.Open(ctx, store.Config{SQLitePath: filepath.Join(srv.Dir, "rampart.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tenant, err := st.TenantByName(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	var open string
	deploy := func(version string) {
		t.Helper()
		if open != "" {
			if _, err := st.AbortDeployment(ctx, store.System, tenant.ID, open, "next release"); err != nil && !strings.Contains(err.Error(), "final") {
				t.Fatal(err)
			}
		}
		d, err := st.CreateDeployment(ctx, store.System, tenant.ID, store.DeploymentSpec{Product: "gateway", Group: "Production",
			Release: version, Plan: rollout.DefaultPlan(), Criteria: rollout.DefaultCriteria(), Emergency: true})
		if err != nil {
			t.Fatal(err)
		}
		open = d.ID
	}
	outcome := func(s string) update.Outcome {
		t.Helper()
		var o update.Outcome
		if err := json.NewDecoder(strings.NewReader(s)).Decode(&o); err != nil {
			t.Fatalf("agent output %q: %v", s, err)
		}
		return o
	}

	deploy("1.0.0")
	out, err = agent(t, srv, state, runArgs...)
	if o := outcome(out); err != nil || !o.Committed || o.Release != "1.0.0" {
		t.Fatalf("run 1.0.0: %+v, %v (%s)", o, err, out)
	}
	if show := c.OK("device", "show", dev); !strings.Contains(show, "committed 1.0.0") {
		t.Errorf("device show after 1.0.0:\n%s", show)
	}

	id2 := strings.TrimSpace(c.OK("image", "add", filepath.Join(work, "rootfs-1.1.0.img"), "--component", "rootfs", "--version", "1.1.0", "--security-version", "1"))
	c.OK("release", "create", "--product", "gateway", "--version", "1.1.0", "--image", id2)
	c.OK("release", "sign", "--product", "gateway", "--version", "1.1.0", "--keys", keysDir)
	deploy("1.1.0")
	out, err = agent(t, srv, state, runArgs...)
	if o := outcome(out); err != nil || !o.Committed || o.Release != "1.1.0" || len(o.Delta) != 1 {
		t.Fatalf("run 1.1.0: %+v, %v (%s)", o, err, out)
	}
	if show := c.OK("device", "show", dev); !strings.Contains(show, "committed 1.1.0") || !strings.Contains(show, "1.1.0") {
		t.Errorf("device show after 1.1.0:\n%s", show)
	}

	deploy("1.0.0")
	out, err = agent(t, srv, state, runArgs...)
	if err == nil || !strings.Contains(err.Error(), "older release") {
		t.Fatalf("push back 1.0.0: %v (%s), want a refusal", err, out)
	}
	if show := c.OK("device", "show", dev); !strings.Contains(show, "failed 1.0.0") {
		t.Errorf("device show after the refused push-back:\n%s", show)
	}
	out, err = agent(t, srv, state, "status", "--slots", filepath.Join(state, "slots"))
	if err != nil {
		t.Fatal(err)
	}
	var slots update.SlotState
	if err := json.Unmarshal([]byte(out), &slots); err != nil || slots.Slots[slots.Committed] == nil || slots.Slots[slots.Committed].Release != "1.1.0" {
		t.Fatalf("status: %+v, %v (%s)", slots, err, out)
	}
	if _, err := os.Stat(filepath.Join(state, "slots", slots.Committed, "rootfs")); err != nil {
		t.Errorf("committed slot file: %v", err)
	}
}
