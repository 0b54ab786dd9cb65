// Package runner is the device agent's main loop, for one device: measure what the device boots,
// keep the device certificate renewed through attestation, install what the director names
// (A/B slots, trial boot, commit or roll back), report crashes, and wait for the next check-in
// on a long-poll or a jittered timer. `rampart-agent run` drives one Runner; `rampart sim` drives
// thousands of them in one process, each with its own identity, state and TLS connections.
//
// Like everything under internal/agent it links no database, web or server code.
package runner

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/agent/crash"
	"github.com/rampartsec/rampart/internal/agent/devclient"
	"github.com/rampartsec/rampart/internal/agent/durable"
	"github.com/rampartsec/rampart/internal/agent/identity"
	"github.com/rampartsec/rampart/internal/agent/rauc"
	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/delta"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

// DefaultInterval is the periodic check-in interval; each wait is jittered by ±10 %.
const DefaultInterval = time.Hour

// Measure is one extra component to measure before attesting (--measure TYPE:NAME:VERSION:FILE).
type Measure struct {
	Type    deviceapi.EventType
	Name    string
	Version string
	Path    string
}

// Config wires a Runner.
type Config struct {
	Server  string         // base URL, https://host:port
	RootCAs *x509.CertPool // the server's CA
	// StateDir keeps the attester's keys, the measurement log, the certificate, the pinned TUF
	// roots, the update metadata cache and the crash outbox.
	StateDir string
	// SlotsDir holds the A/B slots; default StateDir/slots.
	SlotsDir string
	// Attester is the --attester value; Simulator opens the simulator backend where built.
	Attester  string
	Simulator func(context.Context, attest.Config) (attest.Attester, error)
	// Platform names the firmware's TCG event log and the IMA log sent with every quote
	// (--event-log, --ima-log); empty means securityfs for the tpm backend, none otherwise.
	Platform attest.PlatformLogs
	// KernelBootID identifies the machine's boot; default /proc/sys/kernel/random/boot_id.
	KernelBootID string
	// RepoRoot and DirectorRoot pin the update roots (provisioned at manufacture). When empty the
	// agent fetches version 1 of each from its server on first run and pins them from then on.
	RepoRoot, DirectorRoot []byte
	// SpoolDir is the crash spool; empty turns crash reporting off.
	SpoolDir string
	// Interval between check-ins when no wake-up comes; DefaultInterval when zero.
	Interval time.Duration
	// WaitTimeout bounds one long-poll; 5 minutes when zero.
	WaitTimeout time.Duration
	// Health decides whether a trial boot is healthy; nil commits every trial that boots.
	Health update.HealthFunc
	// RebootCommand runs after a slot switch on hardware attesters, whose PCRs only a real reboot
	// resets. Software attesters simulate the reboot instead.
	RebootCommand []string
	// AgentVersion and AgentPath name the agent binary to measure; AgentPath empty skips it.
	AgentVersion, AgentPath string
	Measures                []Measure
	// Transport, when set, is cloned for each of the device's HTTP clients (the simulator tunes
	// it); identity.NewTransport's (HTTP/1.1) otherwise.
	Transport *http.Transport
	// Limits bound image and metadata downloads; DeviceAPI bounds every other device-API call
	// (deadline, minimum rate, answer size). Their packages' defaults when zero.
	Limits    update.Limits
	DeviceAPI devclient.Limits
	// Now, when set, is the clock the updater checks metadata expiry against. Only tests set it
	// (to let time pass); the agent leaves it nil.
	Now func() time.Time
	// FS is the file system the A/B slots are written through; update.OSFS when nil. The
	// simulator wraps it to cut power in the middle of an install.
	FS     update.FS
	Logger *slog.Logger
	// Installers install the image types besides directory: RAUC (--rauc-bus), update
	// modules (--module-dir). See doc/agent.md.
	Installers []update.Installer
	// LongPollFailed, when set, is called with the error of each failed long-poll (the
	// simulator counts them by reason).
	LongPollFailed func(err error)
	// DeltaDecoders, when set, lends the decoders of the patches the updater applies
	// (update.Config.Decoders): the simulator shares one among its devices.
	DeltaDecoders *delta.Decoders
}

// Status is the agent's state, for `rampart-agent status` and the simulator's summary.
type Status struct {
	DeviceID       string             `json:"device_id"`
	Attester       string             `json:"attester"`
	Attestation    deviceapi.Status   `json:"attestation,omitempty"`
	UpdateOnly     bool               `json:"update_only"`
	Reasons        []deviceapi.Reason `json:"reasons,omitempty"`
	CertNotAfter   *time.Time         `json:"certificate_not_after,omitempty"`
	Release        string             `json:"release,omitempty"`
	Slot           string             `json:"slot,omitempty"`
	Trial          bool               `json:"trial,omitempty"`
	LastOutcome    string             `json:"last_outcome,omitempty"`
	LastError      string             `json:"last_error,omitempty"`
	LastCheckIn    *time.Time         `json:"last_check_in,omitempty"`
	PendingCrashes int                `json:"pending_crash_reports"`
	Boots          int                `json:"boots"`
	// Reattested counts the attestations the server asked for since the agent started (a
	// revocation demoted its certificate; see Wait).
	Reattested int `json:"reattested,omitempty"`
	// LongPollFailures counts the long-polls that failed since the agent started (each is
	// retried with backoff; see Wait), LastLongPollError says why the last one failed.
	LongPollFailures  int    `json:"long_poll_failures,omitempty"`
	LastLongPollError string `json:"last_long_poll_error,omitempty"`
	// Installers are the image types this agent installs; Installer is the one that installed
	// the running release.
	Installers []string `json:"installers,omitempty"`
	Installer  string   `json:"installer,omitempty"`
	// Install is the step of an install under way through an installer (update.Phase*).
	Install string `json:"install,omitempty"`
	// LastFailure says why the last install through an installer failed or rolled back.
	LastFailure string `json:"last_failure,omitempty"`
	// BootedSlot and RAUC are RAUC's view (the RAUC installer only).
	BootedSlot string       `json:"booted_slot,omitempty"`
	RAUC       *rauc.Status `json:"rauc,omitempty"`
}

// Runner is one device's agent.
type Runner struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	att  attest.Attester
	mlog *attest.MeasurementLog
	// digests hashes the files measureBoot measures once per boot, and again when one changes
	// (attest.FileDigests); open starts it afresh with each boot. Its memo is shared with the
	// slots (update.Slots.UseDigests), which verify the committed slot's files by the same
	// SHA-256 at every check-in: a file settled since it was written is read once per boot.
	digests attest.FileDigests
	id      *identity.Identity
	slots   *update.Slots
	upd     *update.Updater
	// keptUpd is the updater of the boot before a simulated reboot; the next updater adopts the
	// update metadata it verified (update.Updater.Adopt).
	keptUpd *update.Updater
	crashes *crash.Collector
	http    *http.Client
	dev     *devclient.Client // the device API over http
	// sessions keeps the TLS sessions the device's connections resume, across the boots a
	// software attester simulates (identity.SessionCache).
	sessions *identity.SessionCache
	tenant   string
	status   Status
	boots    int
	// everAssigned is set once the director named a release for this device.
	everAssigned bool
	// reattest is set when the long-poll said to attest again now (a revocation demoted the
	// device's certificate); the next check-in attests whether or not the certificate is due.
	reattest bool
	// longPollFailing is set from a failed long-poll until the next try.
	longPollFailing bool
	// clock and rand, when set, drive the retries' waits (tests).
	clock retryClock
	rand  func() float64
}

// New opens the device's state: attester, measurement log, identity and slots. It does not talk
// to the server.
func New(ctx context.Context, cfg Config) (*Runner, error) {
	// Status reads only the state folder; the server and its CA are checked when a check-in needs them.
	if cfg.StateDir == "" {
		return nil, errors.New("runner.New: a state folder is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SlotsDir == "" {
		cfg.SlotsDir = filepath.Join(cfg.StateDir, "slots")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.WaitTimeout == 0 {
		cfg.WaitTimeout = 5 * time.Minute
	}
	if cfg.KernelBootID == "" {
		id, err := attest.CurrentBootID()
		if err != nil {
			return nil, fmt.Errorf("runner.New: %w", err)
		}
		cfg.KernelBootID = id
	}
	r := &Runner{cfg: cfg, log: cfg.Logger, sessions: identity.NewSessionCache()}
	r.boots = readInt(filepath.Join(cfg.StateDir, "boots"))
	if err := r.open(ctx); err != nil {
		return nil, err
	}
	if cfg.FS == nil {
		cfg.FS = update.OSFS{}
	}
	slots, err := update.OpenSlots(cfg.SlotsDir, cfg.FS)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("runner.New: %w", err)
	}
	slots.UseDigests(r.digests.Shared)
	r.slots = slots
	if cfg.SpoolDir != "" {
		r.crashes, err = crash.New(crash.Config{SpoolDir: cfg.SpoolDir, OutboxDir: filepath.Join(cfg.StateDir, "crash-outbox"),
			Describe: func(string) (string, string) { return "", r.runningRelease() }, Logger: cfg.Logger})
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("runner.New: %w", err)
		}
	}
	r.status.Attester = cfg.Attester
	return r, nil
}

// bootID is the attester's boot: the machine's, plus the number of simulated reboots.
func (r *Runner) bootID() string {
	if r.boots == 0 {
		return r.cfg.KernelBootID
	}
	return r.cfg.KernelBootID + "-" + strconv.Itoa(r.boots)
}

// open (re)opens the attester, the measurement log and the identity for the current boot.
func (r *Runner) open(ctx context.Context) error {
	var att attest.Attester
	var err error
	if sw, ok := r.att.(*attest.Software); ok {
		// The reboot a software attester simulates: the same keys, a new PCR bank.
		att, err = sw.Rebooted(r.bootID())
	} else {
		att, err = attest.Open(ctx, attest.Config{Spec: r.cfg.Attester, StateDir: r.cfg.StateDir, BootID: r.bootID(),
			Logger: r.log, Simulator: r.cfg.Simulator})
	}
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	mlog, err := attest.OpenLog(filepath.Join(r.cfg.StateDir, "measurements.json"), r.bootID())
	if err != nil {
		att.Close()
		return fmt.Errorf("runner: %w", err)
	}
	tr := r.cfg.Transport
	if tr == nil {
		tr = identity.NewTransport()
	}
	id, err := identity.New(ctx, identity.Config{Server: r.cfg.Server, RootCAs: r.cfg.RootCAs, Attester: att, Log: mlog,
		Platform: r.cfg.Platform, StateDir: r.cfg.StateDir, Limits: r.cfg.DeviceAPI, Transport: tr, Sessions: r.sessions, Logger: r.log})
	if err != nil {
		att.Close()
		return fmt.Errorf("runner: %w", err)
	}
	tr = tr.Clone()
	tr.TLSClientConfig = id.TLSConfig()
	if r.http != nil {
		r.http.CloseIdleConnections()
	}
	if r.id != nil {
		r.id.Close()
	}
	r.att, r.mlog, r.id = att, mlog, id
	r.digests = attest.FileDigests{Shared: &durable.Known[[]byte]{}}
	if r.slots != nil {
		r.slots.UseDigests(r.digests.Shared)
	}
	r.http = &http.Client{Transport: tr}
	r.dev = devclient.New(r.cfg.Server, r.http, r.cfg.DeviceAPI)
	if r.upd != nil {
		r.keptUpd = r.upd
	}
	r.upd = nil // rebuilt with the new client; it adopts keptUpd's verified metadata
	r.status.DeviceID = id.DeviceID()
	return nil
}

// Close releases the attester (TPM handles) and idle connections.
func (r *Runner) Close() {
	if r.http != nil {
		r.http.CloseIdleConnections()
	}
	if r.id != nil {
		r.id.Close()
	}
	if r.att != nil {
		r.att.Close()
	}
}

// DeviceID is the device's ID (hex SHA-256 of its identity key).
func (r *Runner) DeviceID() string { return r.id.DeviceID() }

// Enroll registers the device with the server (it is claimed by a tenant, or preauthorised).
func (r *Runner) Enroll(ctx context.Context) error {
	_, err := r.id.Enroll(ctx)
	return err
}

// Status returns the agent's current state.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Boots = r.boots
	if st, err := r.slots.State(); err == nil {
		s.setSlots(st)
	}
	if j, err := update.ReadJournal(filepath.Join(r.cfg.StateDir, "update")); err == nil {
		s.setJournal(j)
	}
	s.setInstallers(r.cfg.Installers)
	if c := r.id.Certificate(); c != nil && c.Leaf != nil {
		t := c.Leaf.NotAfter
		s.CertNotAfter = &t
		s.UpdateOnly = r.id.UpdateOnly()
	}
	if r.crashes != nil {
		_, n, _ := r.crashes.Pending()
		s.PendingCrashes = n
	}
	return s
}

// setSlots fills in the booted slot, its release and whether it is on trial.
func (s *Status) setSlots(st update.SlotState) {
	s.Slot, s.Trial = st.Committed, st.Trial != ""
	if st.Trial != "" {
		s.Slot = st.Trial
	}
	if info := st.Slots[s.Slot]; info != nil {
		s.Release = info.Release
	}
}

// setJournal fills in what the installers' journal says: the release they committed, the step
// of an install under way, the last failure.
func (s *Status) setJournal(j update.Journal) {
	if j.Release != "" {
		s.Release, s.Installer, s.Slot, s.Trial = j.Release, j.Installer, "", false
	}
	s.Install, s.LastFailure = j.Phase, j.LastFailure
	if j.Artifact != nil {
		s.Trial = true
	}
}

// setInstallers lists the installers and asks RAUC for its slots (reading only).
func (s *Status) setInstallers(ins []update.Installer) {
	s.Installers = []string{deviceapi.ImageTypeDirectory}
	if s.Installer == "" && s.Release != "" {
		s.Installer = deviceapi.ImageTypeDirectory
	}
	for _, in := range ins {
		s.Installers = append(s.Installers, in.Type())
		if ri, ok := in.(*rauc.Installer); ok {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			st := ri.Status(ctx)
			cancel()
			s.RAUC, s.BootedSlot = &st, st.BootedSlot
		}
	}
}

// ReadStatus is `rampart-agent status`: the agent's state as the state folder keeps it, read
// without the attester or the server and without writing anything. Of cfg it uses StateDir,
// SlotsDir and Attester (shown for a device enrolled before the state folder recorded its
// attester). A folder with no enrolled device is a public NotFound error that says to enrol.
func ReadStatus(cfg Config) (Status, error) {
	if cfg.StateDir == "" {
		return Status{}, errors.New("runner.ReadStatus: a state folder is required")
	}
	if cfg.SlotsDir == "" {
		cfg.SlotsDir = filepath.Join(cfg.StateDir, "slots")
	}
	local, err := identity.ReadLocal(cfg.StateDir)
	if errors.Is(err, identity.ErrNoDevice) {
		return Status{}, public.Errorf(public.NotFound, "no device in %s yet; run rampart-agent enroll first", cfg.StateDir)
	}
	if err != nil {
		return Status{}, err
	}
	s := Status{DeviceID: local.Device.DeviceID, Attester: string(local.Device.Attester),
		Boots: readInt(filepath.Join(cfg.StateDir, "boots"))}
	if s.Attester == "" {
		s.Attester = cfg.Attester
	}
	if c := local.Certificate; c != nil {
		t := c.NotAfter
		s.CertNotAfter, s.UpdateOnly = &t, local.UpdateOnly
	}
	st, err := update.ReadState(cfg.SlotsDir)
	if err != nil {
		return Status{}, err
	}
	s.setSlots(st)
	j, err := update.ReadJournal(filepath.Join(cfg.StateDir, "update"))
	if err != nil {
		return Status{}, err
	}
	s.setJournal(j)
	s.setInstallers(cfg.Installers)
	if _, s.PendingCrashes, err = crash.PendingIn(filepath.Join(cfg.StateDir, "crash-outbox")); err != nil {
		return Status{}, public.Wrap(err, public.Internal, "cannot read the crash outbox in %s: %v", cfg.StateDir, errors.Unwrap(err))
	}
	return s, nil
}

// runningRelease is the release of the booted slot, which a crash file that names no version
// crashed on; "" before the first install.
func (r *Runner) runningRelease() string {
	// A release an installer (RAUC, a module) committed is what runs.
	if j, err := update.ReadJournal(filepath.Join(r.cfg.StateDir, "update")); err == nil && j.Release != "" {
		return j.Release
	}
	st, err := r.slots.State()
	if err != nil {
		return ""
	}
	slot := st.Committed
	if st.Trial != "" {
		slot = st.Trial
	}
	if info := st.Slots[slot]; info != nil {
		return info.Release
	}
	return ""
}

// measureBoot extends the agent and the booted slot's components into the PCRs, once per boot.
// It runs at every check-in; a file hashed earlier in this boot is hashed again only when it
// changed (r.digests), and an event already in this boot's log is not extended again.
func (r *Runner) measureBoot(ctx context.Context) error {
	var items []Measure
	if r.cfg.AgentPath != "" {
		items = append(items, Measure{deviceapi.EventAgent, "rampart-agent", r.cfg.AgentVersion, r.cfg.AgentPath})
	}
	items = append(items, r.cfg.Measures...)
	if st, err := r.slots.State(); err == nil {
		slot := st.Committed
		if st.Trial != "" {
			slot = st.Trial
		}
		if info := st.Slots[slot]; info != nil {
			for name, c := range info.Components {
				items = append(items, Measure{deviceapi.EventOS, name, c.Version, r.slots.ComponentPath(slot, name)})
			}
		}
	}
	for _, m := range items {
		digest, err := r.digests.Digest(m.Path)
		if err != nil {
			return fmt.Errorf("runner: measure %s: %w", m.Name, err)
		}
		if r.mlog.Measured(m.Type, m.Name, digest) {
			continue
		}
		if err := r.mlog.Measure(ctx, r.att, m.Type, m.Name, m.Version, digest); err != nil {
			return fmt.Errorf("runner: measure %s: %w", m.Name, err)
		}
	}
	return nil
}

// attest renews the certificate when due (force: always) and records the verdict of an
// attestation it made (nil when the certificate was not due). An attestation the server asked
// for (a revocation) counts in Status.Reattested once it succeeds.
func (r *Runner) attest(ctx context.Context, force bool) (*deviceapi.AttestResponse, error) {
	if !force {
		_, err := r.id.RenewIfDue(ctx)
		return nil, err
	}
	resp, err := r.id.Attest(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.status.Attestation, r.status.Reasons = resp.Status, resp.Reasons
	if r.reattest {
		r.status.Reattested++
	}
	r.reattest = false
	r.mu.Unlock()
	return resp, nil
}

// AttestNow measures what this boot runs (the agent, the booted slot's images, any extra
// measure) and attests now, whatever the certificate's age; `rampart-agent attest` prints its
// answer. It shares the boot ID and the measurement log with the loop.
func (r *Runner) AttestNow(ctx context.Context) (*deviceapi.AttestResponse, error) {
	if err := r.measureBoot(ctx); err != nil {
		return nil, err
	}
	return r.attest(ctx, true)
}

// Once runs one check-in: measure, attest if due, update, report crashes.
func (r *Runner) Once(ctx context.Context) error {
	if r.cfg.Server == "" || r.cfg.RootCAs == nil {
		return errors.New("runner.Once: a check-in needs the server and its CA")
	}
	err := r.once(ctx)
	now := time.Now().UTC()
	r.mu.Lock()
	r.status.LastCheckIn = &now
	r.status.LastError = ""
	if err != nil {
		// What `rampart-agent status` shows: the sentence the agent's last line would print.
		r.status.LastError = err.Error()
		if msg, ok := public.Message(err); ok {
			r.status.LastError = msg
		}
	}
	r.mu.Unlock()
	return err
}

func (r *Runner) once(ctx context.Context) error {
	if err := r.measureBoot(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	// With no certificate yet, or when the server said to (a revocation), attest now.
	force := r.reattest || r.id.Certificate() == nil
	r.mu.Unlock()
	if _, err := r.attest(ctx, force); err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	// An update that fails does not keep the crash reports back: they may say why.
	err := r.update(ctx)
	if r.crashes != nil {
		if _, cerr := r.crashes.Cycle(ctx, crash.UploaderFunc(r.uploadCrashes)); cerr != nil {
			r.log.Warn("crash reports kept for later", "err", cerr)
		}
	}
	return err
}

// update installs what the director names, or finishes a trial boot; nothing when the tenant
// has no update keys yet (no update configured is a normal state).
func (r *Runner) update(ctx context.Context) error {
	upd, err := r.updater(ctx)
	if errors.Is(err, errNoUpdateKeys) {
		r.log.Debug("no update configured", "err", err)
		r.mu.Lock()
		r.status.LastOutcome = "no update keys yet"
		r.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	assigned, err := r.assigned(ctx)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	var out update.Outcome
	if assigned {
		out, err = upd.RunOnce(ctx)
	} else {
		// Nothing named for this device yet; still finish a trial boot left by a power cut.
		if out, err = upd.Resume(ctx); err == nil && out.Installer == "" {
			var b update.Boot
			b, err = upd.FinishBoot(ctx)
			out.Release, out.RolledBack = b.Info.Release, b.RolledBack
		}
	}
	outcome := describe(out)
	r.mu.Lock()
	r.status.LastOutcome = outcome
	r.mu.Unlock()
	if out.Installer == "" && (out.Installed || out.RolledBack != "") {
		// Another slot runs now: boot it, so that what is measured and attested is what runs.
		if rerr := r.reboot(ctx); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return nil
}

func describe(o update.Outcome) string {
	switch {
	case o.Rebooting:
		return "rebooting into " + o.Release + " (" + o.Installer + ")"
	case o.RolledBack != "":
		return "rolled back: " + o.RolledBack
	case o.Committed && len(o.Delta) > 0:
		return "committed " + o.Release + " (delta: " + strings.Join(o.Delta, ", ") + ")"
	case o.Committed:
		return "committed " + o.Release
	case o.Installed:
		return "installed " + o.Release
	case o.Release != "":
		return "running " + o.Release
	}
	return "no release assigned"
}

// reboot moves to the newly booted slot. Software attesters simulate it (a new boot ID resets
// their PCR bank); hardware attesters need the machine to reboot, which RebootCommand does.
func (r *Runner) reboot(ctx context.Context) error {
	if r.cfg.Attester != string(deviceapi.KindSoftware) {
		if len(r.cfg.RebootCommand) == 0 {
			r.log.Warn("a new slot was installed; reboot the device so that its TPM measures it")
			return nil
		}
		r.log.Info("rebooting into the new slot", "command", strings.Join(r.cfg.RebootCommand, " "))
		return runCommand(ctx, r.cfg.RebootCommand)
	}
	r.att.Close()
	r.boots++
	if err := writeInt(filepath.Join(r.cfg.StateDir, "boots"), r.boots); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	if err := r.open(ctx); err != nil {
		return err
	}
	if err := r.measureBoot(ctx); err != nil {
		return err
	}
	_, err := r.attest(ctx, true)
	return err
}

// updater builds the updater once the device has a certificate (the tenant is in its SPIFFE
// ID) and the update roots are pinned.
func (r *Runner) updater(ctx context.Context) (*update.Updater, error) {
	if r.upd != nil {
		return r.upd, nil
	}
	tenant, err := r.tenantName()
	if err != nil {
		return nil, err
	}
	repoPath := deviceapi.TUFPath(url.PathEscape(tenant))
	repoRoot, err := r.pinnedRoot(ctx, "repo-root.json", r.cfg.RepoRoot, repoPath+"/metadata/1.root.json")
	if err != nil {
		return nil, err
	}
	directorRoot, err := r.pinnedRoot(ctx, "director-root.json", r.cfg.DirectorRoot, deviceapi.PathDirector+"/1.root.json")
	if err != nil {
		return nil, err
	}
	r.upd, err = update.New(update.Config{
		DeviceID: r.id.DeviceID(), RepoURL: r.cfg.Server + repoPath, DirectorURL: r.cfg.Server + deviceapi.PathDirector,
		RepoRoot: repoRoot, DirectorRoot: directorRoot,
		StateDir: filepath.Join(r.cfg.StateDir, "update"), Slots: r.slots, HTTPClient: r.http, Limits: r.cfg.Limits,
		Reporter: &update.HTTPReporter{Client: r.dev},
		Health:   r.cfg.Health, Logger: r.log, Now: r.cfg.Now,
		Installers: r.cfg.Installers, BootID: r.bootID(), Decoders: r.cfg.DeltaDecoders,
	})
	if err != nil {
		return nil, err
	}
	r.upd.Adopt(r.keptUpd)
	r.keptUpd = nil
	return r.upd, nil
}

// assigned reports whether the director has metadata for this device, that is whether a release
// was ever named for it; until then the director answers 404 and there is nothing to update. Once
// named, a device stays assigned, so the question is asked only until the first yes: the updater
// fetches the director's timestamp itself on every check-in.
func (r *Runner) assigned(ctx context.Context) (bool, error) {
	if r.everAssigned {
		return true, nil
	}
	err := r.dev.Do(ctx, http.MethodGet, deviceapi.PathDirector+"/timestamp.json", nil, nil)
	switch {
	case err == nil:
		r.everAssigned = true
		return true, nil
	case devclient.IsStatus(err, http.StatusNotFound):
		return false, nil
	}
	return false, fmt.Errorf("director: %w", err)
}

// tenantName reads the tenant from the certificate's SPIFFE ID: the first label of its trust
// domain (spiffe://<tenant>.<suffix>/..., or spiffe://<tenant>/... from an older server).
func (r *Runner) tenantName() (string, error) {
	if r.tenant != "" {
		return r.tenant, nil
	}
	c := r.id.Certificate()
	if c == nil || c.Leaf == nil || len(c.Leaf.URIs) != 1 || c.Leaf.URIs[0].Scheme != "spiffe" {
		return "", errors.New("no device certificate yet")
	}
	r.tenant, _, _ = strings.Cut(c.Leaf.URIs[0].Host, ".")
	return r.tenant, nil
}

// errNoUpdateKeys means the server has no update root for the device's tenant yet (404): no
// update is configured, which is a normal state, not a failure.
var errNoUpdateKeys = errors.New("the tenant has no update keys yet (rampart keys init)")

// pinnedRoot returns the root pinned in the state folder, pinning the configured one or, on first
// run, the server's version 1 (trust on first use over the authenticated server connection).
func (r *Runner) pinnedRoot(ctx context.Context, file string, configured []byte, path string) ([]byte, error) {
	pinned := filepath.Join(r.cfg.StateDir, file)
	if b, err := os.ReadFile(pinned); err == nil {
		return b, nil
	}
	b := configured
	if b == nil {
		err := r.dev.Do(ctx, http.MethodGet, path, nil, &b)
		if devclient.IsStatus(err, http.StatusNotFound) {
			return nil, fmt.Errorf("fetch %s: %w", path, errNoUpdateKeys)
		}
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", path, err)
		}
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("root %s is not JSON", file)
	}
	return b, durable.WriteFile(pinned, b)
}

// uploadCrashes posts one batch of crash reports to the device API.
func (r *Runner) uploadCrashes(ctx context.Context, b deviceapi.CrashBatch) error {
	err := r.dev.Do(ctx, http.MethodPost, deviceapi.PathFailures, b, nil)
	if devclient.IsStatus(err, http.StatusBadRequest, http.StatusRequestEntityTooLarge) {
		return fmt.Errorf("%w: %w", crash.ErrRejected, err)
	}
	if err != nil {
		return fmt.Errorf("upload crash reports: %w", err)
	}
	return nil
}

// Retry bounds of Run: a failed check-in is tried again after about MinRetry, doubling up to
// MaxRetry (or the interval when that is shorter), each wait drawn by Backoff.
const (
	MinRetry = 5 * time.Second
	MaxRetry = 10 * time.Minute
)

// Retry bounds of the long-poll: a long-poll that fails (the server restarting, a connection
// reset, a TLS handshake that timed out on a loaded server) is opened again after about
// LongPollMinRetry, doubling up to LongPollMaxRetry, each wait drawn by Backoff. Once the
// long-poll has been failing for LongPollCheckInAfter, Wait returns so that the caller checks in:
// a wake-up sent while the device was off the long-poll is remembered by the server for two
// minutes only (wake.RememberFor), and the check-in finds a deployment whatever was missed.
const (
	LongPollMinRetry     = time.Second
	LongPollMaxRetry     = 30 * time.Second
	LongPollCheckInAfter = time.Minute
)

// Backoff is a bounded exponential backoff with jitter: the first wait is about Min, each next
// one about twice the last, up to Max, and each is drawn between half and one and a half of
// that, so that devices cut off together (a server restart, a storm of TLS handshakes) do not
// all come back at the same instant. The zero value of Rand uses math/rand/v2.
type Backoff struct {
	Min, Max time.Duration
	// Rand returns a number in [0, 1); tests fix it.
	Rand  func() float64
	tries int
}

// Next counts a failed try and returns the wait before the next one.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.tries && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	b.tries++
	f := rand.Float64
	if b.Rand != nil {
		f = b.Rand
	}
	return time.Duration(float64(d) * (0.5 + f()))
}

// Tries is the number of failed tries counted since the last Reset.
func (b *Backoff) Tries() int { return b.tries }

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.tries = 0 }

// Run checks in until ctx ends: once at start, then whenever the server wakes the device or the
// jittered interval passes. A check-in that fails (every call has a deadline, so none hangs) is
// retried with backoff.
func (r *Runner) Run(ctx context.Context) error {
	b := Backoff{Min: MinRetry, Max: min(MaxRetry, r.cfg.Interval), Rand: r.rand}
	for {
		if err := r.Once(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait := b.Next()
			r.log.Warn("check-in failed", "err", err, "retry_in", wait)
			if r.sleep(ctx, wait) != nil {
				return nil
			}
			continue
		}
		b.Reset()
		if err := r.Wait(ctx); ctx.Err() != nil {
			return nil
		} else if err != nil {
			r.log.Warn("off the long-poll; checking in", "err", err)
		}
	}
}

// Wait holds the long-poll /device/v1/wait until a wake-up (nil) or the next periodic check-in
// (nil). A long-poll that ends at its timeout is opened again at once; one that fails is opened
// again with backoff (LongPollMinRetry to LongPollMaxRetry), and after LongPollCheckInAfter of
// failures Wait returns the last error so that the caller checks in. A server without the
// long-poll (404) falls back to the timer. Run calls it between check-ins; the simulator calls
// Once and Wait itself to observe each check-in.
func (r *Runner) Wait(ctx context.Context) error {
	deadline := r.now().Add(jitter(r.cfg.Interval))
	b := Backoff{Min: LongPollMinRetry, Max: LongPollMaxRetry, Rand: r.rand}
	var failingSince time.Time
	for now := r.now(); now.Before(deadline); now = r.now() {
		timeout := min(r.cfg.WaitTimeout, deadline.Sub(now))
		r.mu.Lock()
		r.longPollFailing = false // trying again
		r.mu.Unlock()
		woke, err := r.longPoll(ctx, timeout)
		r.noteLongPoll(err)
		if woke {
			return nil
		}
		if err == nil {
			b.Reset()
			failingSince = time.Time{}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if devclient.IsStatus(err, http.StatusNotFound) {
			// A server without the long-poll: the periodic check-in only.
			if serr := r.sleep(ctx, deadline.Sub(r.now())); serr != nil {
				return serr
			}
			return err
		}
		if failingSince.IsZero() {
			failingSince = now
		}
		if r.now().Sub(failingSince) >= LongPollCheckInAfter {
			return fmt.Errorf("the long-poll failed %d times in a row: %w", b.Tries()+1, err)
		}
		wait := min(b.Next(), deadline.Sub(r.now()))
		r.log.Warn("long-poll failed", "err", err, "failures_in_a_row", b.Tries(), "retry_in", wait)
		if serr := r.sleep(ctx, wait); serr != nil {
			return serr
		}
	}
	return nil
}

// noteLongPoll records how a long-poll ended, for Status and LongPoll.
func (r *Runner) noteLongPoll(err error) {
	r.mu.Lock()
	r.longPollFailing = err != nil
	if err != nil {
		r.status.LongPollFailures++
		r.status.LastLongPollError = err.Error()
		if msg, ok := public.Message(err); ok {
			r.status.LastLongPollError = msg
		}
	}
	r.mu.Unlock()
	if err != nil && r.cfg.LongPollFailed != nil {
		r.cfg.LongPollFailed(err)
	}
}

// LongPollFailing reports whether the device is off the long-poll: its last long-poll failed
// and it has not tried again yet. It reads no files, unlike Status.
func (r *Runner) LongPollFailing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.longPollFailing
}

// now and sleep are the clock of Run's and Wait's retries; tests replace them.
func (r *Runner) now() time.Time {
	if r.clock != nil {
		return r.clock.Now()
	}
	return time.Now()
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) error {
	if r.clock != nil {
		return r.clock.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryClock is the clock tests give Run and Wait.
type retryClock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// longPoll returns true when the server woke the device.
func (r *Runner) longPoll(ctx context.Context, timeout time.Duration) (bool, error) {
	path := fmt.Sprintf("%s?timeout=%ds", deviceapi.PathWait, max(int(timeout.Seconds()), 1))
	var body deviceapi.WaitAnswer
	if err := r.dev.DoWithin(ctx, timeout+devclient.LongPollGrace, http.MethodGet, path, nil, &body); err != nil {
		return false, fmt.Errorf("wait: %w", err)
	}
	if body.Reattest {
		// A revocation demoted this device's certificate: the check-in this wake-up starts
		// attests again, measuring what the device booted.
		r.mu.Lock()
		r.reattest = true
		r.mu.Unlock()
		r.log.Info("the server asks for a new attestation (a release this device runs was revoked)")
	}
	return body.Woken || body.Reattest, nil
}

// TLSConfig is the client configuration presenting the device certificate, for callers (the
// simulator) that talk to the device API themselves.
func (r *Runner) TLSConfig() *tls.Config { return r.id.TLSConfig() }
