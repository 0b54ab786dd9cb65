package server

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/wake"
)

// TestReplicasWakeEachOther runs two replicas on one PostgreSQL database. A device waits on the
// second; an emergency deployment written through the first wakes it within seconds (not at
// its wait timeout), and the second replica's cached deployment for the group is dropped at
// once. A device of another group waiting beside it stays asleep, and so does the device when
// the first replica pauses the deployment, until it resumes it.
func TestReplicasWakeEachOther(t *testing.T) {
	url := storetest.PostgresURL(t)
	dirA := t.TempDir()
	a, _ := start(t, Config{DataDir: dirA, Database: url})
	b, _ := start(t, Config{DataDir: t.TempDir(), Database: url, MasterKeyFile: filepath.Join(dirA, "master.key")})
	testenv.WaitFor(t, "both replicas listening", func() bool { return a.waker.Listening() && b.waker.Listening() })

	ctx := context.Background()
	tn, err := a.store.TenantByName(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := a.store.CreateProduct(ctx, store.System, tn.ID, "lamp", "")
	if err != nil {
		t.Fatal(err)
	}
	prod, err := a.store.GroupByName(ctx, tn.ID, "lamp", "Production")
	if err != nil {
		t.Fatal(err)
	}
	devel, err := a.store.GroupByName(ctx, tn.ID, "lamp", "Development")
	if err != nil {
		t.Fatal(err)
	}
	dev, other := fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2)
	for _, d := range []struct{ id, group string }{{dev, prod.ID}, {other, devel.ID}} {
		if _, err := storetest.DB(a.store).Exec(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 'claimed', '', '1.0.0', '', 1, 1)`, d.id, tn.ID, p.ID, d.group); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := storetest.DB(a.store).Exec(`INSERT INTO releases (id, tenant_id, product_id, version, state, targets_version, revoked_reason, created_at)
		VALUES ($1, $2, $3, '1.1.0', 'signed', 1, '', 1)`, store.NewID("rel"), tn.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	// The second replica has read, and cached, that nothing governs the group.
	if _, err := b.store.OfferForGroup(ctx, tn.ID, prod.ID, dev); err == nil {
		t.Fatal("a deployment governs the group before one was created")
	}

	woken := make(chan error, 2)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	go func() { woken <- b.Wake().Wait(wctx, dev, wake.GroupTag(tn.ID, "lamp", "Production")) }()
	octx, ocancel := context.WithCancel(ctx)
	defer ocancel()
	otherDone := make(chan error, 1)
	go func() { otherDone <- b.Wake().Wait(octx, other, wake.GroupTag(tn.ID, "lamp", "Development")) }()
	testenv.WaitFor(t, "two devices waiting on the second replica", func() bool { return b.Wake().Waiting() == 2 })

	start := time.Now()
	d, err := a.store.CreateDeployment(ctx, store.System, tn.ID, store.DeploymentSpec{Product: "lamp", Group: "Production",
		Release: "1.1.0", Plan: rollout.DefaultPlan(), Criteria: rollout.DefaultCriteria(), Emergency: true})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woken:
		if err != nil {
			t.Fatalf("the device's wait on the second replica ended with %v, want a wake-up", err)
		}
		t.Logf("woken on the second replica %s after the first wrote the deployment", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the device waiting on the second replica was not woken within 10 s")
	}
	offer, err := b.store.OfferForGroup(ctx, tn.ID, prod.ID, dev)
	if err != nil || offer.Deployment.ID != d.ID || !offer.Offered {
		t.Errorf("second replica's offer right after the wake-up: %+v, %v; want deployment %s offered", offer, err, d.ID)
	}
	select {
	case err := <-otherDone:
		t.Errorf("a device of another group was woken: %v", err)
	case <-time.After(200 * time.Millisecond):
	}

	// A pause opens nothing: the device waiting again on the second replica sleeps on; the
	// resume wakes it.
	go func() { woken <- b.Wake().Wait(wctx, dev, wake.GroupTag(tn.ID, "lamp", "Production")) }()
	testenv.WaitFor(t, "the device waiting again", func() bool { return b.Wake().Waiting() == 2 })
	if _, err := a.store.PauseDeployment(ctx, store.System, tn.ID, d.ID, "hold"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woken:
		t.Fatalf("a pause on the first replica woke the device on the second: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := a.store.ResumeDeployment(ctx, store.System, tn.ID, d.ID, "go"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woken:
		if err != nil {
			t.Fatalf("after the resume the wait ended with %v, want a wake-up", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the resume on the first replica did not wake the device on the second within 10 s")
	}
}

// TestReplicasWakeDemotedDevices: a device whose last attestation measured release 1.0.0 waits
// on the second replica; revoking 1.0.0 through the first demotes its certificate and wakes it
// there within seconds, not at the end of its wait.
func TestReplicasWakeDemotedDevices(t *testing.T) {
	url := storetest.PostgresURL(t)
	dirA := t.TempDir()
	a, _ := start(t, Config{DataDir: dirA, Database: url})
	b, _ := start(t, Config{DataDir: t.TempDir(), Database: url, MasterKeyFile: filepath.Join(dirA, "master.key")})
	testenv.WaitFor(t, "both replicas listening", func() bool { return a.waker.Listening() && b.waker.Listening() })

	ctx := context.Background()
	tn, err := a.store.TenantByName(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := a.store.CreateProduct(ctx, store.System, tn.ID, "lamp", "")
	if err != nil {
		t.Fatal(err)
	}
	prod, err := a.store.GroupByName(ctx, tn.ID, "lamp", "Production")
	if err != nil {
		t.Fatal(err)
	}
	dev, digest, rel := fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 9), store.NewID("rel")
	db := storetest.DB(a.store)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 'claimed', 'warning', '1.0.0', '', 1, 1)`, []any{dev, tn.ID, p.ID, prod.ID}},
		{`INSERT INTO releases (id, tenant_id, product_id, version, state, targets_version, revoked_reason, created_at)
			VALUES ($1, $2, $3, '1.0.0', 'signed', 1, '', 1)`, []any{rel, tn.ID, p.ID}},
		{`INSERT INTO release_images (release_id, component, sha256) VALUES ($1, 'rootfs', $2)`, []any{rel, digest}},
		{`INSERT INTO device_measurements (device_id, sha256) VALUES ($1, $2)`, []any{dev, digest}},
		{`INSERT INTO attestation_results (id, tenant_id, device_id, at, status, granted, reasons, cert_serial, cert_not_after)
			VALUES ($1, $2, $3, 1, 'warning', 'normal', '[]', 'abc123', $4)`, []any{store.NewID("att"), tn.ID, dev, time.Now().Add(24 * time.Hour).UnixMicro()}},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}

	woken := make(chan error, 1)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	go func() { woken <- b.Wake().Wait(wctx, dev, wake.GroupTag(tn.ID, "lamp", "Production")) }()
	testenv.WaitFor(t, "the device waiting on the second replica", func() bool { return b.Wake().Waiting() == 1 })

	r, err := a.releases.Revoke(ctx, store.System, tn.ID, "lamp", "1.0.0", "CVE-2026-0001")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Demoted) != 1 || r.Demoted[0] != dev {
		t.Fatalf("the revocation demoted %v, want the device", r.Demoted)
	}
	select {
	case err := <-woken:
		if err != nil {
			t.Fatalf("the demoted device's wait on the second replica ended with %v, want a wake-up", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the device demoted through the first replica was not woken on the second within 10 s")
	}
}
