package runner_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/agent/devclient"
	"github.com/rampartsec/rampart/internal/agent/runner"
	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/testenv"
)

// Proxy modes.
const (
	pass   int32 = iota // forward both ways
	slow                // forward the server's bytes one every 100 ms
	silent              // forward the device's bytes, never the server's
)

// proxy is a loopback TCP proxy between a device and the server, so that a test can make the
// server's answers slow or silent without touching the server: an attacker on the path.
type proxy struct {
	*testenv.Proxy
	mode atomic.Int32
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{}
	p.Proxy = testenv.StartShapingProxy(t, target, p.down)
	return p
}

func (p *proxy) url() string { return "https://" + p.Addr() }

// down copies the server's bytes to the device as the mode says, read at the moment each
// chunk arrives: a connection opened in pass mode turns slow or silent with the proxy.
func (p *proxy) down(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for i := 0; i < n; {
			switch p.mode.Load() {
			case silent:
				i = n // swallowed; the connection stays open
			case slow:
				if _, werr := dst.Write(buf[i : i+1]); werr != nil {
					return
				}
				i++
				time.Sleep(100 * time.Millisecond)
			default:
				if _, werr := dst.Write(buf[i:n]); werr != nil {
					return
				}
				i = n
			}
		}
		if err != nil {
			return
		}
	}
}

// limits are the device API bounds of these tests: short, so that a held call ends in seconds.
var limits = devclient.Limits{Deadline: 3 * time.Second, MinRate: 256, RateWindow: time.Second}

// TestRunnerNotHeldBySlowOrSilentServer puts a real server behind a proxy that trickles or
// swallows its answers, as a server or an attacker on the path can, and checks that a
// check-in ends with a deadline or slow-retrieval error instead of waiting forever, and that
// the next check-in, with the path healed, succeeds. Before every device-API call had a
// deadline, the director probe (GET /device/v1/director/timestamp.json) waited forever.
func TestRunnerNotHeldBySlowOrSilentServer(t *testing.T) {
	f := startFleet(t)
	f.release(t, "1.0.0", 1, nil)
	u, err := url.Parse(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	ctx := context.Background()
	r := claimedRunner(t, f.CLI, runner.Config{Server: p.url(), RootCAs: f.Roots, StateDir: t.TempDir(),
		DeviceAPI: limits, Limits: update.Limits{MinRate: 256, RateWindow: time.Second}})
	// The first check-in attests, pins the roots, and finds nothing assigned yet.
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	hold := func(t *testing.T) {
		for _, mode := range []struct {
			name string
			mode int32
		}{{"slow", slow}, {"silent", silent}} {
			t.Run(mode.name, func(t *testing.T) { holdOnce(t, r, p, mode.mode) })
		}
	}
	// Before any release is named, the check-in asks the director whether one is.
	t.Run("unassigned", hold)
	// Once one is, it refreshes the TUF metadata (timestamp.json first) and reports install
	// states.
	f.Deploy(t, "1.0.0")
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.Release != "1.0.0" {
		t.Fatalf("after 1.0.0: %+v", st)
	}
	t.Run("assigned", hold)
}

// holdOnce runs one check-in through the proxy in mode, then one with the path healed.
func holdOnce(t *testing.T, r *runner.Runner, p *proxy, mode int32) {
	ctx := context.Background()
	p.mode.Store(mode)
	// A bound for the test only (no timing assertion): the call must end by itself, long
	// before this.
	tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := r.Once(tctx)
	if tctx.Err() != nil {
		t.Fatalf("the check-in was held until the test gave up: %v", err)
	}
	if !errors.Is(err, devclient.ErrDeadline) && !errors.Is(err, devclient.ErrSlow) && !errors.Is(err, update.ErrSlowRetrieval) {
		t.Fatalf("check-in through a held path = %v; want a deadline or slow-retrieval error", err)
	}
	t.Logf("refused: %v", err)

	// With the path healed the device checks in again. A connection whose bytes the proxy
	// swallowed is corrupt (bad record MAC) and is dropped by the call that meets it; the
	// loop's next try dials afresh.
	p.mode.Store(pass)
	var err2 error
	for range 3 {
		if err2 = r.Once(ctx); err2 == nil {
			break
		}
		t.Logf("check-in after the path healed: %v", err2)
	}
	if err2 != nil {
		t.Fatalf("check-in after the path healed: %v", err2)
	}
}

// TestRunKeepsGoing runs the agent's loop through a silent path and checks that, once the
// path heals, a check-in succeeds: the loop retried instead of hanging on the first call.
func TestRunKeepsGoing(t *testing.T) {
	f := startFleet(t)
	u, err := url.Parse(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := runner.New(ctx, runner.Config{Server: p.url(), RootCAs: f.Roots, StateDir: t.TempDir(),
		Attester: "software", KernelBootID: "boot-1", Interval: time.Hour, WaitTimeout: time.Second, DeviceAPI: limits})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if err := r.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	f.CLI.OK("device", "claim", r.DeviceID(), "--product", "lamp", "--group", "Production")
	p.mode.Store(silent)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	testenv.WaitFor(t, "a check-in through the silent path to fail", func() bool {
		return r.Status().LastError != ""
	})
	failed := *r.Status().LastCheckIn
	// rampart-agent status shows the failure as a sentence, with no function names.
	if last := r.Status().LastError; goName.MatchString(last) {
		t.Errorf("last error %q names Go functions", last)
	}
	p.mode.Store(pass)
	testenv.WaitFor(t, "a check-in after the path healed", func() bool {
		st := r.Status()
		return st.LastCheckIn != nil && st.LastCheckIn.After(failed) && st.LastError == "" && st.CertNotAfter != nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// goName matches an operation prefix such as "identity.Enroll: ".
var goName = regexp.MustCompile(`\b[a-z]+\.[A-Z][A-Za-z]*(\.[A-Z][A-Za-z]*)*: `)
