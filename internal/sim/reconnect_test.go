package sim_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/sim"
	"github.com/rampartsec/rampart/internal/testenv"
)

// TestDevicesComeBackToTheLongPoll cuts the devices off the server while they hold the
// long-poll and keeps them off for a while; once the path heals they hold the long-poll again
// by themselves (the agent's retry with backoff, doc/agent.md) and a deployment reaches all of
// them. Before the retry a failed long-poll sent a device to sleep until its periodic check-in,
// an hour here, and this deployment reached none.
func TestDevicesComeBackToTheLongPoll(t *testing.T) {
	ctx := context.Background()
	w := startWorld(t)
	w.release(t, "1.0.0", 1)
	u, err := url.Parse(w.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProxy(t, u.Host)
	f := w.Sim(t, sim.Config{Server: "https://" + p.Addr(), Devices: 3,
		Interval: time.Hour, WaitTimeout: 5 * time.Minute, Seed: 5})
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	clitest.RunSim(t, f)
	hub := w.Service.Wake()
	testenv.WaitFor(t, "the three devices on the long-poll", func() bool { return hub.Waiting() == 3 })

	p.Down()
	q := until(t, f, "the devices off the long-poll", func(q sim.Progress) bool { return q.OffLongPoll == 3 && q.LongPollFailures >= 6 })
	t.Logf("cut off: %s", q)
	p.Up()
	testenv.WaitFor(t, "the three devices back on the long-poll", func() bool { return hub.Waiting() == 3 })

	// Through the admin API, which wakes the group's waiting devices (clitest's Deploy writes
	// the deployment to the store only).
	w.CLI.OK("deployment", "create", "--product", "lamp", "--group", "Production", "--release", "1.0.0", "--emergency")
	q = until(t, f, "1.0.0 on every device", func(q sim.Progress) bool { return q.Releases["1.0.0"] == 3 })
	if q.OffLongPoll != 0 || q.Errors != 0 {
		t.Errorf("after the deployment: %s; want every device on the long-poll and no failed check-in", q)
	}
}
