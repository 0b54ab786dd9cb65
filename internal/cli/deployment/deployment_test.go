package deployment_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/audit"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/coverage"
	"github.com/rampartsec/rampart/internal/cli/deployment"
	"github.com/rampartsec/rampart/internal/cli/failure"
	"github.com/rampartsec/rampart/internal/cli/product"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// fleet plays the devices against the server's own database: in production they report over
// the device API (install status, crash batches); here the test writes what those endpoints
// write, so the walk stays about the operator's verbs.
type fleet struct {
	t       *testing.T
	s       *store.Store
	tenant  string
	devices []string
}

func openFleet(t *testing.T, srv *clitest.Server, n int) *fleet {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{SQLitePath: filepath.Join(srv.Dir, "rampart.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tn, err := s.TenantByName(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.ProductByName(ctx, tn.ID, "lamp")
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.GroupByName(ctx, tn.ID, "lamp", "Production")
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, s: s, tenant: tn.ID}
	err = storetest.InTx(ctx, s, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO releases (id, tenant_id, product_id, version, state, targets_version, revoked_reason, created_at)
			VALUES ('rel_walk', $1, $2, '2.0', 'signed', 1, '', 1)`, tn.ID, p.ID); err != nil {
			return err
		}
		for i := range n {
			sum := sha256.Sum256(fmt.Appendf(nil, "walk-%d", i))
			id := hex.EncodeToString(sum[:])
			if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release,
				target_release, created_at, updated_at) VALUES ($1, $2, $3, $4, 'claimed', '', '1.0', '', 1, 1)`, id, tn.ID, p.ID, g.ID); err != nil {
				return err
			}
			if err := s.AppendCoverageEvent(ctx, tx, tn.ID, p.ID, g.ID, id, "1.0"); err != nil {
				return err
			}
			f.devices = append(f.devices, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// install makes every device the deployment offers the release report it installed.
func (f *fleet) install() {
	f.t.Helper()
	ctx := context.Background()
	for _, id := range f.devices {
		off, err := f.s.OfferForDevice(ctx, f.tenant, id)
		if err != nil {
			f.t.Fatal(err)
		}
		if off.Offered {
			if err := f.s.RecordDeviceRelease(ctx, f.tenant, id, off.Deployment.Release); err != nil {
				f.t.Fatal(err)
			}
		}
	}
}

// TestDeploymentWalk follows doc/rollouts.md: a deployment progresses phase by phase, a crash
// group appears with its counts, and coverage of the release reaches 100 %.
func TestDeploymentWalk(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(product.Command, deployment.Command, failure.Command, coverage.Command, audit.Command), srv, srv.Admin)
	c.OK("product", "create", "lamp")
	f := openFleet(t, srv, 20)

	c.Fails("--product, --group and --release are required", "deployment", "create", "--product", "lamp")
	c.Fails("the last phase must cover 100% of the group, not 50%", "deployment", "create", "--product", "lamp", "--group", "Production", "--release", "2.0", "--phases", "10,50")
	c.Fails("takes no --phases", "deployment", "create", "--product", "lamp", "--group", "Production", "--release", "2.0", "--emergency", "--phases", "100")
	c.Fails("not found", "deployment", "create", "--product", "lamp", "--group", "Production", "--release", "9.9")

	var d client.Deployment
	out := c.OK("deployment", "create", "--product", "lamp", "--group", "Production", "--release", "2.0", "--phases", "50,100", "--soak", "0s", "--output", "json")
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.State != "active" || d.Phase != 1 {
		t.Fatalf("create: %+v %v\n%s", d, err, out)
	}
	c.Fails("already has an active or paused deployment", "deployment", "create", "--product", "lamp", "--group", "Production", "--release", "2.0")

	// Phase 1: half the group installs; the server's timer steps the deployment.
	f.install()
	step := func() {
		if _, err := f.s.StepDeployment(context.Background(), f.tenant, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	step()
	show := c.OK("deployment", "show", d.ID)
	if !strings.Contains(show, "active") || !strings.Contains(show, "2/2") {
		t.Errorf("after phase 1:\n%s", show)
	}
	// A crash on the new release, from a device of phase 1, shows up as a group with its count.
	crashed := ""
	for _, id := range f.devices {
		if dev, err := f.s.DeviceByID(context.Background(), f.tenant, id); err == nil && dev.CurrentRelease == "2.0" {
			crashed = id
			break
		}
	}
	if crashed == "" {
		t.Fatal("no device runs 2.0 after phase 1")
	}
	if _, err := f.s.AddFailureReports(context.Background(), f.tenant, crashed, []deviceapi.CrashReport{{ID: "c1", Program: "/usr/bin/lampd",
		Version: "2.0", Signal: 11, Frames: []string{"#0 0x00007f00 in led_set (v=1) at led.c:42", "main"}, Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	list := c.OK("failure", "list", "--product", "lamp")
	if !strings.Contains(list, "led_set") || !strings.Contains(list, "SIGSEGV") || !strings.Contains(list, "2.0") {
		t.Errorf("failure list:\n%s", list)
	}
	var groups []client.FailureGroup
	if err := json.Unmarshal([]byte(c.OK("failure", "list", "--output", "json")), &groups); err != nil || len(groups) != 1 {
		t.Fatalf("failure list json: %v %v", groups, err)
	}
	if g := c.OK("failure", "show", groups[0].ID); !strings.Contains(g, "1 from 1 devices") || !strings.Contains(g, "1 reports, phase 1 of "+d.ID) {
		t.Errorf("failure show:\n%s", g)
	}

	// Phase 2: the rest installs and the deployment completes; coverage reaches 100 %.
	f.install()
	step()
	if show := c.OK("deployment", "show", d.ID); !strings.Contains(show, "completed") {
		t.Errorf("after phase 2:\n%s", show)
	}
	c.Fails("deployment is not active", "deployment", "pause", d.ID)
	cov := c.OK("coverage", "--product", "lamp", "--group", "Production")
	if !strings.Contains(cov, "100.0%") {
		t.Errorf("coverage:\n%s", cov)
	}
	var covJSON client.Coverage
	if err := json.Unmarshal([]byte(c.OK("coverage", "--product", "lamp", "--output", "json")), &covJSON); err != nil || covJSON.NewestShare != 1 || !covJSON.Releases[0].Milestones[3].Reached {
		t.Errorf("coverage json: %+v %v", covJSON, err)
	}
	if l := c.OK("deployment", "list", "--state", "completed"); !strings.Contains(l, d.ID) {
		t.Errorf("deployment list:\n%s", l)
	}
	audits := c.OK("audit", "list")
	for _, a := range []string{"deployment.create", "deployment.advance", "deployment.complete", "failure_group.create"} {
		if !strings.Contains(audits, a) {
			t.Errorf("audit list lacks %s", a)
		}
	}
}

// TestDeploymentCriteriaFlags sets the abort criteria from the CLI: thresholds that a release
// crosses, with abort as the action, end the deployment; bad values are refused before anything
// is written.
func TestDeploymentCriteriaFlags(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(product.Command, deployment.Command, audit.Command), srv, srv.Admin)
	c.OK("product", "create", "lamp")
	f := openFleet(t, srv, 10)
	create := []string{"deployment", "create", "--product", "lamp", "--group", "Production", "--release", "2.0", "--emergency"}

	c.Fails("max_install_failures \"150%\": is not a share", append(create, "--max-install-failures", "150%")...)
	c.Fails("on_failure \"explode\": is not pause or abort", append(create, "--on-failure", "explode")...)
	c.Fails("report_deadline \"30s\"", append(create, "--report-deadline", "30s")...)
	// --phases are percentages, and so is the refusal.
	c.FailsWith("rampart: invalid phase plan: phase 2: 10% does not grow past phase 1's 50%; phases are cumulative shares of the group, e.g. 10,50,100 (HTTP 400)\n",
		"deployment", "create", "--product", "lamp", "--group", "Production", "--release", "2.0", "--phases", "50,10")
	if l := c.OK("deployment", "list"); strings.Contains(l, "2.0") {
		t.Fatalf("a refused create left a deployment:\n%s", l)
	}

	var d client.Deployment
	out := c.OK(append(create, "--max-install-failures", "10%", "--min-sample", "5", "--max-new-signature-devices", "off",
		"--on-failure", "abort", "--output", "json")...)
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	want := "install failures > 10% of ≥5 → abort; silent 1d > 10% of ≥5 → abort; crash rate > 2× the previous release → abort"
	if d.CriteriaSummary != want {
		t.Fatalf("criteria %q, want %q", d.CriteriaSummary, want)
	}
	// Three of ten devices fail to install: 30 % is over the 10 % limit, so the deployment ends.
	ctx := context.Background()
	for i, id := range f.devices {
		var err error
		if i < 3 {
			err = f.s.RecordInstallFailure(ctx, f.tenant, id, "2.0", "slot B: checksum mismatch")
		} else {
			err = f.s.RecordDeviceRelease(ctx, f.tenant, id, "2.0")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.s.StepDeployment(ctx, f.tenant, d.ID); err != nil {
		t.Fatal(err)
	}
	show := c.OK("deployment", "show", d.ID)
	for _, s := range []string{"aborted", "install failures 3 of 10", "CRITERIA", "→ abort"} {
		if !strings.Contains(show, s) {
			t.Errorf("deployment show lacks %q:\n%s", s, show)
		}
	}
	if a := c.OK("audit", "list"); !strings.Contains(a, "deployment.abort") {
		t.Errorf("no deployment.abort audit record:\n%s", a)
	}
}
