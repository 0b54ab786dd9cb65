// Package sim runs a simulated fleet in one process: N devices, each a real agent
// (internal/agent/runner with the software attester) with its own identity key, state folder,
// certificate and TLS connections, against a running Rampart server. It can keep a share of the
// fleet offline, make releases crash or fail their health check, cut power in the middle of
// installs, and reports progress (enrolled, attested, devices per release) while it runs. The
// `rampart sim` and `rampart demo` verbs, benchmarks and the tests' fixture clitest import it.
package sim

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/agent/runner"
	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/delta"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

// Errors returned by the fleet.
var (
	// ErrSimulatedFailure is what a simulated health check returns for a failing install.
	ErrSimulatedFailure = errors.New("simulated health check failure")
	// ErrPowerCut is what every file operation returns once a simulated power cut has struck.
	ErrPowerCut = errors.New("simulated power cut")
)

// Config describes the simulated fleet.
type Config struct {
	Server  string         // base URL of a running server, https://host:port
	RootCAs *x509.CertPool // the server's CA
	// Dir holds one state folder per device (device-000001, ...).
	Dir     string
	Devices int
	// Concurrency bounds the enrolments, attestations and check-ins running at once (waiting on
	// the long-poll is not bounded); 4×GOMAXPROCS when zero. A real fleet has no such bound,
	// but on one machine a thousand devices woken together would only thrash the scheduler
	// and the database: the bound keeps the server's work the same and the curve honest.
	Concurrency int
	// Offline is the share (0..1) of devices that enrol but then never check in.
	Offline float64
	// CrashRate is, per release, the probability that a device running it reports a crash after
	// a check-in (a crash file in the device's spool, in the documented JSON format).
	CrashRate map[string]float64
	// InstallFailure is, per release, the probability that its trial boot fails the health check
	// (the agent then rolls back to the previous slot and reports the failure).
	InstallFailure map[string]float64
	// PowerCut is the probability that a check-in cuts power at a random one of the first
	// PowerCutWindow file operations of the updater; the device then restarts with a new boot.
	PowerCut float64
	// Interval is the periodic check-in interval (jittered ±10 %); runner.DefaultInterval when zero.
	Interval time.Duration
	// WaitTimeout bounds one long-poll; 5 minutes when zero.
	WaitTimeout time.Duration
	// Seed makes the random choices repeatable; 0 picks one.
	Seed uint64
	// Logger gets the fleet's warnings (failed long-polls, counted, every WarnEvery);
	// AgentLogger each device's agent's log, with the device's number. AgentLogger is Logger
	// when nil; both discard when nil.
	Logger, AgentLogger *slog.Logger
}

// PowerCutWindow is the range of file operations (1..PowerCutWindow) a power cut strikes at; a
// one-component install performs about this many (create, write, fsync, rename, directory
// fsync, state file), so most cuts land inside an install, at any of its steps.
const PowerCutWindow = 24

// Fleet is a simulated fleet.
type Fleet struct {
	cfg     Config
	log     *slog.Logger
	devices []*device
	active  chan struct{} // Concurrency tokens for check-ins and attestations

	checkIns, crashes, powerCuts, failedInstalls, errs atomic.Int64

	// longPollFails counts the failed long-polls; reasons counts them and failed check-ins by
	// reason (the error with its numbers blanked: ports, addresses) since the last warning
	// (warnFailures).
	longPollFails atomic.Int64
	reasonsMu     sync.Mutex
	reasons       map[string]int
}

// device is one simulated device: a runner and what the fleet knows of it.
type device struct {
	index   int
	dir     string
	cfg     runner.Config
	fs      *cutFS
	rng     *rand.Rand
	offline bool

	mu       sync.Mutex
	r        *runner.Runner
	enrolled bool
	status   runner.Status
	boot     int
	// failed is set when the device's first check-in (Start) failed: its loop checks in before
	// it waits.
	failed bool
}

// New prepares the fleet's devices: state folders, software identity keys and runners. It does
// not talk to the server.
func New(ctx context.Context, cfg Config) (*Fleet, error) {
	if cfg.Server == "" || cfg.RootCAs == nil || cfg.Dir == "" || cfg.Devices < 1 {
		return nil, errors.New("sim.New: server, its CA, a folder and at least one device are required")
	}
	for name, p := range map[string]float64{"offline share": cfg.Offline, "power-cut rate": cfg.PowerCut} {
		if p < 0 || p > 1 {
			return nil, fmt.Errorf("sim.New: %w", public.Errorf(public.Invalid, "%s %v is not between 0 and 1", name, p))
		}
	}
	for _, m := range []map[string]float64{cfg.CrashRate, cfg.InstallFailure} {
		for rel, p := range m {
			if p < 0 || p > 1 {
				return nil, fmt.Errorf("sim.New: %w", public.Errorf(public.Invalid, "rate %v for release %s is not between 0 and 1", p, rel))
			}
		}
	}
	if err := CheckOpenFiles(cfg.Devices, FilesPerDevice); err != nil {
		return nil, fmt.Errorf("sim.New: %w", err)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4 * runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AgentLogger == nil {
		cfg.AgentLogger = cfg.Logger
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("sim.New: %w", public.Errorf(public.Unavailable, "cannot create the devices' folder: %w", err))
	}
	f := &Fleet{cfg: cfg, log: cfg.Logger, devices: make([]*device, cfg.Devices), active: make(chan struct{}, cfg.Concurrency),
		reasons: map[string]int{}}
	// One transport template: HTTP/1.1 keep-alive (an HTTP/2 connection per device costs the
	// server more memory for nothing) and a small idle pool. Each device resumes its own TLS
	// sessions, as the agent does (identity.SessionCache).
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       10 * time.Minute,
		TLSHandshakeTimeout:   30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	loopback := loopbackServer(cfg.Server)
	// The devices' updaters apply their patches with decoders lent by one pool rather than each
	// allocating its own history buffers (1.3 MiB a patch for the smallest window).
	decoders := &delta.Decoders{}
	offline := int(float64(cfg.Devices)*cfg.Offline + 0.5)
	err := f.each(ctx, func(ctx context.Context, i int) error {
		d := &device{index: i, dir: filepath.Join(cfg.Dir, fmt.Sprintf("device-%06d", i+1)), fs: &cutFS{FS: update.OSFS{}},
			rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i))), offline: i >= cfg.Devices-offline}
		d.cfg = runner.Config{Server: cfg.Server, RootCAs: cfg.RootCAs, StateDir: d.dir, Attester: string(deviceapi.KindSoftware),
			SpoolDir: filepath.Join(d.dir, "crash-spool"), Interval: cfg.Interval, WaitTimeout: cfg.WaitTimeout,
			Transport: deviceTransport(tr, loopback, i), FS: d.fs, Health: f.health(d), Logger: cfg.AgentLogger.With("device", i+1), LongPollFailed: f.longPollFailed,
			DeltaDecoders: decoders}
		d.boot = readBoot(d.dir)
		d.cfg.KernelBootID = d.bootID()
		r, err := runner.New(ctx, d.cfg)
		if err != nil {
			return public.Errorf(public.Unavailable, "device %d: %w", i+1, err)
		}
		d.r = r
		d.status = r.Status()
		_, statErr := os.Stat(filepath.Join(d.dir, "enrolled"))
		d.enrolled = statErr == nil
		f.devices[i] = d
		return nil
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sim.New: %w", err)
	}
	return f, nil
}

// DevicesPerSource is how many simulated devices connect from one loopback source address: a
// server on a loopback IPv4 address is reached by devices 1 to 10,000 from 127.0.0.1, the next
// 10,000 from 127.0.0.2 and so on, since the connections from one address to the server's one
// port cannot outnumber the ephemeral ports (about 28,000 by default).
const DevicesPerSource = 10000

// loopbackServer reports whether the server URL names a loopback IPv4 address.
func loopbackServer(server string) bool {
	u, err := url.Parse(server)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.To4() != nil && ip.IsLoopback()
}

// deviceTransport is the transport template of device i: tr, dialling from the device's
// loopback source address (DevicesPerSource) past the first 10,000 devices of a loopback server.
func deviceTransport(tr *http.Transport, loopback bool, i int) *http.Transport {
	if !loopback || i < DevicesPerSource {
		return tr
	}
	n := i/DevicesPerSource + 1 // 127.0.0.2 for the second block
	t := tr.Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))}}).DialContext
	return t
}

func (d *device) bootID() string { return fmt.Sprintf("sim-%06d-boot-%d", d.index+1, d.boot) }

// each runs fn for every device index with bounded concurrency, stopping at the first error.
func (f *Fleet) each(ctx context.Context, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, f.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range f.cfg.Devices {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// Close releases every device's attester and connections.
func (f *Fleet) Close() {
	for _, d := range f.devices {
		if d != nil && d.r != nil {
			d.r.Close()
		}
	}
}

// DeviceIDs lists the devices' IDs, in order.
func (f *Fleet) DeviceIDs() []string {
	ids := make([]string, len(f.devices))
	for i, d := range f.devices {
		ids[i] = d.r.DeviceID()
	}
	return ids
}

// Enroll registers every device not enrolled yet with the server, with bounded concurrency.
// Devices must then be claimed (or have been preauthorised by their key hash, which is their ID).
func (f *Fleet) Enroll(ctx context.Context) error {
	err := f.each(ctx, func(ctx context.Context, i int) error {
		d := f.devices[i]
		if d.isEnrolled() {
			return nil
		}
		if err := d.r.Enroll(ctx); err != nil {
			return public.Errorf(public.Unavailable, "device %d: %w", i+1, err)
		}
		if err := os.WriteFile(filepath.Join(d.dir, "enrolled"), nil, 0o600); err != nil {
			return err
		}
		d.mu.Lock()
		d.enrolled = true
		d.mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("sim.Enroll: %w", err)
	}
	return nil
}

func (d *device) isEnrolled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.enrolled
}

// Start attests every online device (bounded concurrency: the first attestation is the costly
// burst) by running its first check-in.
func (f *Fleet) Start(ctx context.Context) error {
	err := f.each(ctx, func(ctx context.Context, i int) error {
		d := f.devices[i]
		if d.offline {
			return nil
		}
		if err := f.checkIn(ctx, d); err != nil && ctx.Err() == nil {
			d.mu.Lock()
			d.failed = true
			d.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sim.Start: %w", err)
	}
	return nil
}

// Run runs every online device's loop (check in, then wait for a wake-up or the interval) until
// ctx ends. Call Start first to spread the first attestations over bounded concurrency. Failed
// long-polls and check-ins are logged at warn, with their counts and reasons, every WarnEvery.
func (f *Fleet) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(WarnEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f.warnFailures()
			}
		}
	})
	for _, d := range f.devices {
		if d.offline {
			continue
		}
		wg.Go(func() { f.loop(ctx, d) })
	}
	wg.Wait()
	return nil
}

// WarnEvery is how often Run logs the long-polls and check-ins that failed since its last warning.
const WarnEvery = 10 * time.Second

// loop is one device's life: wait on the long-poll, check in, and, as the agent's Run does,
// check in again with backoff while a check-in fails (runner.MinRetry to runner.MaxRetry), and
// at once after a power cut (the device boots and its agent starts with a check-in).
func (f *Fleet) loop(ctx context.Context, d *device) {
	d.mu.Lock()
	wait := !d.failed // a device whose first check-in failed checks in first
	d.mu.Unlock()
	for ctx.Err() == nil {
		// The long-poll is the real agent's: a wake-up for a deployment, or the server's request
		// to attest again after a revocation, which the next check-in acts on. It retries a
		// failed long-poll itself and returns after a minute of failures, so that the device
		// checks in.
		if wait {
			if err := d.current().Wait(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("off the long-poll; checking in", "device", d.index+1, "err", err)
			}
		}
		wait = true
		b := runner.Backoff{Min: runner.MinRetry, Max: min(runner.MaxRetry, f.interval())}
		for ctx.Err() == nil {
			select {
			case f.active <- struct{}{}:
			case <-ctx.Done():
				return
			}
			again := f.checkIn(ctx, d)
			<-f.active
			if again == nil {
				break
			}
			if errors.Is(again, ErrPowerCut) {
				continue
			}
			pause := b.Next()
			f.log.Debug("check-in failed", "device", d.index+1, "err", again, "retry_in", pause)
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

func (f *Fleet) interval() time.Duration {
	if f.cfg.Interval > 0 {
		return f.cfg.Interval
	}
	return runner.DefaultInterval
}

// longPollFailed counts a failed long-poll by its reason.
func (f *Fleet) longPollFailed(err error) {
	f.longPollFails.Add(1)
	f.noteReason("long-poll: ", err)
}

// noteReason counts a failure by its reason, for warnFailures.
func (f *Fleet) noteReason(what string, err error) {
	reason := what + digits.ReplaceAllString(err.Error(), "N")
	f.reasonsMu.Lock()
	f.reasons[reason]++
	f.reasonsMu.Unlock()
}

var digits = regexp.MustCompile(`[0-9]+`)

// warnFailures logs the long-polls and check-ins that failed since the last call, if any: how
// many, how many devices are off the long-poll now, and the commonest reasons.
func (f *Fleet) warnFailures() {
	f.reasonsMu.Lock()
	reasons := f.reasons
	f.reasons = map[string]int{}
	f.reasonsMu.Unlock()
	if len(reasons) == 0 {
		return
	}
	n := 0
	for _, c := range reasons {
		n += c
	}
	keys := slices.SortedFunc(maps.Keys(reasons), func(a, b string) int { return reasons[b] - reasons[a] })
	var top []string
	for _, k := range keys[:min(3, len(keys))] {
		top = append(top, fmt.Sprintf("%d× %s", reasons[k], k))
	}
	f.log.Warn("long-polls or check-ins failed; each is retried with backoff", "failed", n, "long_poll_failures", f.longPollFails.Load(),
		"check_in_errors", f.errs.Load(), "devices_off_the_long_poll", f.offLongPoll(), "reasons", strings.Join(top, "; "))
}

// offLongPoll counts the online devices waiting to try again after a failed long-poll.
func (f *Fleet) offLongPoll() int {
	n := 0
	for _, d := range f.devices {
		if !d.offline && d.current().LongPollFailing() {
			n++
		}
	}
	return n
}

func (d *device) current() *runner.Runner {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.r
}

// checkIn runs one check-in, with a power cut armed at random, then records what it did. It
// returns the check-in's error, ErrPowerCut after a power cut, nil otherwise.
func (f *Fleet) checkIn(ctx context.Context, d *device) error {
	if f.cfg.PowerCut > 0 && d.rng.Float64() < f.cfg.PowerCut {
		d.fs.arm(1 + d.rng.IntN(PowerCutWindow))
	}
	r := d.current()
	err := r.Once(ctx)
	cut := d.fs.disarm()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	f.checkIns.Add(1)
	if cut {
		f.powerCuts.Add(1)
		if rerr := f.restart(ctx, d); rerr != nil {
			f.errs.Add(1)
			f.log.Warn("restart after a power cut", "device", d.index+1, "err", rerr)
			return rerr
		}
		return ErrPowerCut
	}
	if err != nil {
		f.errs.Add(1)
		f.noteReason("check-in: ", err)
		f.log.Debug("check-in failed", "device", d.index+1, "err", err)
	}
	st := r.Status()
	d.mu.Lock()
	d.status = st
	d.mu.Unlock()
	if p := f.cfg.CrashRate[st.Release]; p > 0 && d.rng.Float64() < p {
		if err := writeCrash(filepath.Join(d.dir, "crash-spool"), d.rng, st.Release, time.Now()); err != nil {
			f.log.Warn("crash file", "device", d.index+1, "err", err)
		} else {
			f.crashes.Add(1)
		}
	}
	return err
}

// restart reopens the device after a power cut: a new boot (its software PCRs reset), the same
// state folder, whatever the cut left on disk.
func (f *Fleet) restart(ctx context.Context, d *device) error {
	d.mu.Lock()
	old := d.r
	d.boot++
	d.cfg.KernelBootID = d.bootID()
	cfg := d.cfg
	d.mu.Unlock()
	old.Close()
	if err := writeBoot(d.dir, d.boot); err != nil {
		return err
	}
	r, err := runner.New(ctx, cfg)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.r = r
	d.status = r.Status()
	d.mu.Unlock()
	return nil
}

// health is the device's health check: fail at the release's install-failure rate.
func (f *Fleet) health(d *device) update.HealthFunc {
	return func(ctx context.Context, b update.Boot) error {
		if p := f.cfg.InstallFailure[b.Info.Release]; p > 0 && d.rng.Float64() < p {
			f.failedInstalls.Add(1)
			return ErrSimulatedFailure
		}
		return nil
	}
}

// Progress is a snapshot of the fleet.
type Progress struct {
	Devices    int `json:"devices"`
	Online     int `json:"online"`
	Enrolled   int `json:"enrolled"`
	Attested   int `json:"attested"`    // devices holding a certificate
	UpdateOnly int `json:"update_only"` // of which update-only
	// Releases counts the devices per release they run ("" for blank devices).
	Releases map[string]int `json:"releases"`
	CheckIns int64          `json:"check_ins"`
	// Reattests counts the attestations the server asked the devices for (a revocation).
	Reattests      int64 `json:"reattestations"`
	Crashes        int64 `json:"crash_reports"`
	FailedInstalls int64 `json:"failed_installs"`
	PowerCuts      int64 `json:"power_cuts"`
	Errors         int64 `json:"errors"`
	// LongPollFailures counts the failed long-polls (each retried with backoff); OffLongPoll is
	// the online devices waiting to try again after a failed long-poll.
	LongPollFailures int64 `json:"long_poll_failures"`
	OffLongPoll      int   `json:"off_the_long_poll"`
}

// Progress counts the fleet now.
func (f *Fleet) Progress() Progress {
	p := Progress{Devices: len(f.devices), Releases: map[string]int{}}
	now := time.Now()
	for _, d := range f.devices {
		d.mu.Lock()
		st, enrolled := d.status, d.enrolled
		d.mu.Unlock()
		if !d.offline {
			p.Online++
		}
		if enrolled {
			p.Enrolled++
		}
		if st.CertNotAfter != nil && st.CertNotAfter.After(now) {
			p.Attested++
			if st.UpdateOnly {
				p.UpdateOnly++
			}
		}
		p.Releases[st.Release]++
		p.Reattests += int64(st.Reattested)
	}
	p.CheckIns, p.Crashes = f.checkIns.Load(), f.crashes.Load()
	p.FailedInstalls, p.PowerCuts, p.Errors = f.failedInstalls.Load(), f.powerCuts.Load(), f.errs.Load()
	p.LongPollFailures, p.OffLongPoll = f.longPollFails.Load(), f.offLongPoll()
	return p
}

// Share is the share of online devices running release (0..1).
func (p Progress) Share(release string) float64 {
	if p.Online == 0 {
		return 0
	}
	return float64(p.Releases[release]) / float64(p.Online)
}

// String prints the progress on one line.
func (p Progress) String() string {
	s := fmt.Sprintf("devices %d (online %d) | enrolled %d | attested %d (update-only %d) | releases:", p.Devices, p.Online, p.Enrolled, p.Attested, p.UpdateOnly)
	for _, rel := range slices.Sorted(maps.Keys(p.Releases)) {
		name := rel
		if name == "" {
			name = "none"
		}
		s += fmt.Sprintf(" %s=%d", name, p.Releases[rel])
	}
	return s + fmt.Sprintf(" | check-ins %d, crashes %d, failed installs %d, power cuts %d, errors %d | long-poll failures %d, off the long-poll %d",
		p.CheckIns, p.Crashes, p.FailedInstalls, p.PowerCuts, p.Errors, p.LongPollFailures, p.OffLongPoll)
}

// Status returns one device's last recorded agent status.
func (f *Fleet) Status(i int) runner.Status {
	d := f.devices[i]
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Claim claims every device into product and group through the admin API, with bounded
// concurrency; devices already claimed (a restarted simulator) are left as they are.
func (f *Fleet) Claim(ctx context.Context, c *client.Client, product, group string) error {
	err := f.each(ctx, func(ctx context.Context, i int) error {
		_, err := c.ClaimDevice(ctx, f.devices[i].r.DeviceID(), client.ClaimDeviceRequest{Product: product, Group: group})
		if err != nil && !client.IsStatus(err, http.StatusConflict) {
			return public.Errorf(public.Unavailable, "device %d: %w", i+1, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sim.Claim: %w", err)
	}
	return nil
}

// ParseRates reads per-release rates written as RELEASE=RATE[,RELEASE=RATE...], such as
// "1.0.0=0.02,1.0.1=0"; an empty string is no rates.
func ParseRates(s string) (map[string]float64, error) {
	out := map[string]float64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		rel, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || rel == "" {
			return nil, fmt.Errorf("sim.ParseRates: %w", public.Errorf(public.Invalid, "%q is not RELEASE=RATE", part))
		}
		p, err := strconv.ParseFloat(v, 64)
		if err != nil || p < 0 || p > 1 {
			return nil, fmt.Errorf("sim.ParseRates: %w", public.Errorf(public.Invalid, "rate %q for %s is not a number from 0 to 1", v, rel))
		}
		out[rel] = p
	}
	return out, nil
}
