package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/ratelimit"
	"github.com/rampartsec/rampart/internal/store"
)

func TestDeviceFailures(t *testing.T) {
	h := newHarness(t, "sqlite")
	ctx := context.Background()
	dev := h.newDevice("default")
	cert := h.issue("default", dev, ca.ProfileNormal, time.Now())
	updateOnly := h.issue("default", dev, ca.ProfileUpdateOnly, time.Now())
	if _, err := h.store.CreateTenant(ctx, "system", "", "globex"); err != nil {
		t.Fatal(err)
	}
	other := h.newDevice("globex")
	otherCert := h.issue("globex", other, ca.ProfileNormal, time.Now())

	report := func(id, frame string) string {
		return fmt.Sprintf(`{"id":%q,"program":"/usr/bin/lampd","version":"1.0","signal":11,"frames":[%q,"main"],"time":"2026-03-01T12:00:00Z"}`, id, frame)
	}
	batch := `{"reports":[` + report("r1", "led_set") + `,` + report("r2", "led_set") + `]}`
	answer := func(status int, body []byte) deviceapi.FailureAnswer {
		t.Helper()
		var a deviceapi.FailureAnswer
		if status != http.StatusOK || json.Unmarshal(body, &a) != nil {
			t.Fatalf("failures = %d %s", status, body)
		}
		return a
	}
	if a := answer(h.devicePost("/device/v1/failures", []byte(batch), &cert)); a != (deviceapi.FailureAnswer{Accepted: 2}) {
		t.Errorf("first batch: %+v", a)
	}
	// The agent resends after a restart: nothing is counted twice.
	if a := answer(h.devicePost("/device/v1/failures", []byte(batch), &cert)); a != (deviceapi.FailureAnswer{Duplicates: 2}) {
		t.Errorf("resent batch: %+v", a)
	}
	// A device running revoked software (update-only certificate) still reports its crashes:
	// they tell the operator how urgent the fix is.
	if a := answer(h.devicePost("/device/v1/failures", []byte(`{"reports":[`+report("r3", "led_set")+`]}`), &updateOnly)); a != (deviceapi.FailureAnswer{Accepted: 1}) {
		t.Errorf("update-only batch: %+v", a)
	}
	// A device of another tenant files into its own tenant only.
	answer(h.devicePost("/device/v1/failures", []byte(`{"reports":[`+report("r1", "led_set")+`]}`), &otherCert))

	many := make([]string, 101)
	for i := range many {
		many[i] = report(fmt.Sprintf("m%d", i), "x")
	}
	bad := []struct {
		name   string
		body   string
		cert   *tls.Certificate
		status int
		msg    string
	}{
		{"unknown field", `{"reports":[{"id":"x","program":"p","version":"1","signal":1,"time":"2026-03-01T12:00:00Z","core":"AAAA"}]}`, &cert, http.StatusBadRequest, `malformed crash report: batch: json: unknown field "core"`},
		{"missing version", `{"reports":[{"id":"x","program":"p","signal":1,"time":"2026-03-01T12:00:00Z"}]}`, &cert, http.StatusBadRequest, "report 0: malformed crash report: version is required"},
		{"not json", `crash`, &cert, http.StatusBadRequest, "malformed crash report: batch: invalid character 'c' looking for beginning of value"},
		{"empty", `{"reports":[]}`, &cert, http.StatusBadRequest, "malformed crash report: batch holds no reports"},
		{"too many reports", `{"reports":[` + strings.Join(many, ",") + `]}`, &cert, http.StatusRequestEntityTooLarge, "crash report too large: 101 reports, at most 100"},
		{"oversized", `{"reports":[` + report("big", strings.Repeat("f", 2<<20)) + `]}`, &cert, http.StatusRequestEntityTooLarge, "crash report too large: batch is over 1048576 bytes"},
		{"no certificate", batch, nil, http.StatusUnauthorized, "a device certificate is required (mutual TLS)"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			status, body := h.devicePost("/device/v1/failures", []byte(b.body), b.cert)
			var eb client.ErrorBody
			json.Unmarshal(body, &eb) // an answer that is not the envelope leaves the message empty
			if status != b.status || eb.Error.Message != b.msg {
				t.Errorf("= %d %s, want %d %q", status, body, b.status, b.msg)
			}
			if strings.Contains(string(body), "failure.Decode") || strings.Contains(string(body), "deviceapi.") {
				t.Errorf("error leaks an internal name: %s", body)
			}
		})
	}
	def, _ := h.store.TenantByName(ctx, "default")
	groups, _, err := h.store.ListFailureGroups(ctx, def.ID, store.FailureFilter{}, store.Page{})
	if err != nil || len(groups) != 1 || groups[0].Count != 3 {
		t.Fatalf("default tenant's groups = %+v, %v; want one group of 3 reports, nothing from globex or refused batches", groups, err)
	}
	glob, _ := h.store.TenantByName(ctx, "globex")
	if og, _, _ := h.store.ListFailureGroups(ctx, glob.ID, store.FailureFilter{}, store.Page{}); len(og) != 1 || og[0].Count != 1 || og[0].ID == groups[0].ID {
		t.Errorf("globex's groups = %+v", og)
	}
}

func TestDeviceFailuresRateLimited(t *testing.T) {
	h := newHarness(t, "sqlite")
	h.api.reportLimit = ratelimit.New(0.001, 3, 100)
	dev := h.newDevice("default")
	cert := h.issue("default", dev, ca.ProfileNormal, time.Now())
	body := func(ids ...string) []byte {
		var rs []string
		for _, id := range ids {
			rs = append(rs, `{"id":"`+id+`","program":"p","version":"1","signal":6,"time":"2026-03-01T12:00:00Z"}`)
		}
		return []byte(`{"reports":[` + strings.Join(rs, ",") + `]}`)
	}
	if status, out := h.devicePost("/device/v1/failures", body("a", "b"), &cert); status != http.StatusOK {
		t.Fatalf("first batch = %d %s", status, out)
	}
	// Two more reports exceed the burst of three: the whole batch is refused and nothing stored.
	status, out := h.devicePost("/device/v1/failures", body("c", "d"), &cert)
	if status != http.StatusTooManyRequests || !strings.Contains(string(out), "too many crash reports") {
		t.Fatalf("flooding batch = %d %s, want 429", status, out)
	}
	tn, _ := h.store.TenantByName(context.Background(), "default")
	gs, _, _ := h.store.ListFailureGroups(context.Background(), tn.ID, store.FailureFilter{}, store.Page{})
	if len(gs) != 1 || gs[0].Count != 2 {
		t.Errorf("groups after a refused batch: %+v", gs)
	}
	// The one report left in the bucket still passes.
	if status, out := h.devicePost("/device/v1/failures", body("c"), &cert); status != http.StatusOK {
		t.Errorf("batch within the limit = %d %s", status, out)
	}
}
