package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/wake"
)

func TestDeviceWait(t *testing.T) {
	h := newHarness(t, "sqlite")
	dev := h.newDevice("default")
	cert := h.issue("default", dev, ca.ProfileNormal, time.Now())
	updateOnly := h.issue("default", dev, ca.ProfileUpdateOnly, time.Now())

	answer := func(status int, body string) deviceapi.WaitAnswer {
		t.Helper()
		var a deviceapi.WaitAnswer
		if status != http.StatusOK || json.Unmarshal([]byte(body), &a) != nil {
			t.Fatalf("wait = %d %s", status, body)
		}
		return a
	}
	// Nobody wakes it: the wait ends at its timeout, not woken.
	if a := answer(h.deviceGet("/device/v1/wait?timeout=1s", &cert)); a.Woken {
		t.Fatal("woken without a wake-up")
	}
	// A wake-up while the device is between two waits is kept for its next wait.
	h.api.Wake().Wake(dev.id)
	if a := answer(h.deviceGet("/device/v1/wait?timeout=5s", &updateOnly)); !a.Woken {
		t.Fatal("a pending wake-up was lost")
	}
	// A wake-up during the wait answers it at once; the tag is the device's group.
	done := make(chan deviceapi.WaitAnswer, 1)
	go func() { done <- answer(h.deviceGet("/device/v1/wait?timeout=60s", &cert)) }()
	tag := wake.GroupTag(dev.tenantID(h), "lamp", "Production")
	deadline := time.Now().Add(10 * time.Second)
	for h.api.Wake().WakeTagged(tag, nil) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the device never waited under its group's tag")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a := <-done; !a.Woken {
		t.Fatal("a wake-up during the wait did not answer it")
	}
	for _, bad := range []string{"0s", "1h", "soon", "-5"} {
		status, body := h.deviceGet("/device/v1/wait?timeout="+bad, &cert)
		if status != http.StatusBadRequest || !strings.Contains(body, "timeout must be") {
			t.Errorf("timeout=%s: %d %s", bad, status, body)
		}
	}
	if status, _ := h.deviceGet("/device/v1/wait?timeout=1s", nil); status != http.StatusUnauthorized {
		t.Errorf("wait without a certificate = %d, want 401", status)
	}
}

func (d fleetDevice) tenantID(h *harness) string {
	var id string
	if err := storetest.DB(h.store).QueryRow(`SELECT tenant_id FROM devices WHERE id = $1`, d.id).Scan(&id); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// TestDeploymentWakesDeviceBetweenWaits creates an emergency deployment while the device is not
// waiting (it has just checked in): its next wait answers at once, instead of at its timeout.
// Only the devices the deployment offers the release to are remembered.
func TestDeploymentWakesDeviceBetweenWaits(t *testing.T) {
	h := newHarness(t, "sqlite")
	dev := h.newDevice("default")
	cert := h.issue("default", dev, ca.ProfileNormal, time.Now())
	tenant := dev.tenantID(h)
	p, err := h.store.ProductByName(context.Background(), tenant, "lamp")
	if err != nil {
		t.Fatal(err)
	}
	devel, err := h.store.GroupByName(context.Background(), tenant, "lamp", "Development")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := h.newDevice("default")
	if _, err := storetest.DB(h.store).Exec(`UPDATE devices SET group_id = $1 WHERE id = $2`, devel.ID, elsewhere.id); err != nil {
		t.Fatal(err)
	}
	elsewhereCert := h.issue("default", elsewhere, ca.ProfileNormal, time.Now())
	h.signedReleaseRow(t, tenant, p.ID, "2.0")
	if status, out := h.raw("POST", "/api/v1/deployments", h.admin, "application/json",
		`{"product":"lamp","group":"Production","release":"2.0","emergency":true}`); status != http.StatusCreated {
		t.Fatalf("create deployment: %d %s", status, out)
	}
	start := time.Now()
	status, body := h.deviceGet("/device/v1/wait?timeout=30s", &cert)
	var a deviceapi.WaitAnswer
	if status != http.StatusOK || json.Unmarshal([]byte(body), &a) != nil || !a.Woken {
		t.Fatalf("wait after the deployment = %d %s, want woken at once", status, body)
	}
	t.Logf("woken after %s", time.Since(start).Round(time.Millisecond))
	// The device of another group was not remembered: its wait runs to its timeout.
	status, body = h.deviceGet("/device/v1/wait?timeout=1s", &elsewhereCert)
	if status != http.StatusOK || json.Unmarshal([]byte(body), &a) != nil || a.Woken {
		t.Errorf("wait of a device in another group = %d %s, want not woken", status, body)
	}
}
