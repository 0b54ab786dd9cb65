package tasks

import (
	"context"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/program"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/token"
)

// TestReportsCloseExpiredReports runs the timers against a store whose clock is past
// a report's needs-more-info deadline and waits (bounded) until the report is closed.
func TestReportsCloseExpiredReports(t *testing.T) {
	now := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := storetest.OpenWithClock(t, "sqlite", clock)
	ctx := context.Background()
	tn, err := st.CreateTenant(ctx, store.System, "", "acme")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := program.ParseRules([]byte(`{"name":"p","title":"P","scope":{"products":[{"name":"gw","components":["kernel"]}]},
		"impacts":[{"id":"rce","title":"RCE"}],"scenarios":[{"id":"general","title":"General"}],
		"awards":{"currency":"USD","base":[{"impact":"rce","severity":"critical","min":1,"max":2}]},"needs_info_timeout":"1d"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateProgram(ctx, store.System, tn.ID, rules); err != nil {
		t.Fatal(err)
	}
	_, hash := token.GenerateResearcher()
	r, app, err := st.ApplyNew(ctx, "acme", "p", program.Application{Name: "Ada", Email: "ada@example.org", Country: "GB", Experience: "x"}, hash)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DecideApplication(ctx, store.System, tn.ID, "p", app.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SubmitReport(ctx, r, "p", program.Submission{Title: "t", Description: "d", Scenario: "general", Product: "gw", Components: []string{"kernel"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.TransitionReport(ctx, store.System, tn.ID, 1, store.Transition{To: program.StateNeedsMoreInfo}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(25 * time.Hour)

	timers := NewReports(st, 5*time.Millisecond, nil)
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- timers.Run(tctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rep, err := st.ReportByNumber(ctx, tn.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if rep.State == program.StateNotApplicable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the timers did not close the report: still %s", rep.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Reports.Run returned %v after cancel", err)
	}
}
