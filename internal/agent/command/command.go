// Package command parses rampart-agent's flags and runs its verbs. It is imported by
// cmd/rampart-agent only.
package command

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/agent/module"
	"github.com/rampartsec/rampart/internal/agent/rauc"
	"github.com/rampartsec/rampart/internal/agent/runner"
	"github.com/rampartsec/rampart/internal/certpool"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

// ErrUsage marks a command line that cannot be run; main exits 2 for it.
var ErrUsage = errors.New("usage")

// Message is the one sentence the user sees for err on the agent's last line: the public
// sentence made where the error was made when it carries one, else the error's text.
func Message(err error) string {
	if msg, ok := public.Message(err); ok {
		return msg
	}
	return err.Error()
}

// usageError is a command line that cannot be run: its sentence is what the user sees, and it
// is ErrUsage.
func usageError(format string, args ...any) error {
	return public.Wrap(ErrUsage, public.Invalid, format, args...)
}

// errHelp is --help: the usage is printed and the agent exits 0.
var errHelp = errors.New("help")

const usage = `usage: rampart-agent --server URL --ca-file FILE --state DIR --attester software|tpm|swtpm:HOST:PORT|simulator VERB [VERB FLAGS]

verbs:
  enroll    register this device with the server and print its device ID
  attest    attest once (enrolling again if needed) and print the verdict
  run       keep the device attested and updated: measure, attest when due, install what the
            director names (into the A/B slot folders, or with RAUC or an update module by the
            image's type), report crashes, wait for the next check-in (--once: one check-in,
            then exit)
  status    print the agent's state as the --state folder keeps it (--output json); it
            needs no --server, --ca-file or attester, and writes nothing
  version   print the agent's version (also --version)

flags:
`

// measureFlag collects --measure TYPE:NAME:VERSION:FILE values.
type measureFlag []string

func (m *measureFlag) String() string     { return strings.Join(*m, ",") }
func (m *measureFlag) Set(v string) error { *m = append(*m, v); return nil }

// Run runs the agent with args (without the program name).
func Run(ctx context.Context, args []string, version string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rampart-agent", flag.ContinueOnError)
	var (
		server   = fs.String("server", os.Getenv("RAMPART_SERVER"), "server URL, e.g. https://rampart.example:8443")
		caFile   = fs.String("ca-file", os.Getenv("RAMPART_CA_FILE"), "CA certificate (PEM) that signed the server's certificate")
		state    = fs.String("state", "/var/lib/rampart-agent", "state folder: keys or key blobs, measurement log, device certificate")
		attester = fs.String("attester", "tpm", "attester backend: software, tpm, swtpm:HOST:PORT or simulator")
		verbose  = fs.Bool("verbose", false, "log progress to stderr")
		showVer  = fs.Bool("version", false, "print the agent's version and exit")
		slots    = fs.String("slots", "", "run: folder of the A/B slots (default STATE/slots)")
		once     = fs.Bool("once", false, "run: one check-in, then exit")
		interval = fs.Duration("interval", runner.DefaultInterval, "run: check-in interval when no wake-up comes (jittered ±10 %)")
		spool    = fs.String("spool", "", "run: crash spool folder that applications and systemd-coredump write (empty: no crash reports)")
		repoRoot = fs.String("repo-root", "", "run: pinned image-repository root.json (default: fetched from the server on first run)")
		dirRoot  = fs.String("director-root", "", "run: pinned director root.json (default: fetched from the server on first run)")
		reboot   = fs.String("reboot-cmd", "", "run: command that reboots the device after a slot switch (TPM attesters, and the RAUC installer, which requires it)")
		health   = fs.String("health-cmd", "", "run: command run after the reboot into a new release; exit 0 commits it, anything else rolls it back")
		modDir   = fs.String("module-dir", "", "run, status: install module:NAME images with the Mender update modules (protocol v3) in this folder, e.g. /usr/share/mender/modules/v3")
		modTime  = fs.Duration("module-timeout", module.DefaultStateTimeout, "run: how long one state of an update module may run before it is stopped")
		devType  = fs.String("device-type", "", "run: the device type update modules read in current_device_type")
		raucBus  = fs.String("rauc-bus", "", "run, status: install rauc-bundle images with RAUC on this D-Bus: system, or session (tests; DBUS_SESSION_BUS_ADDRESS)")
		output   = fs.String("output", "table", "status: table or json")
		eventLog = fs.String("event-log", "", "firmware TCG event log sent with every quote (default, for --attester tpm: "+attest.DefaultEventLog+"; - for none)")
		imaLog   = fs.String("ima-log", "", "IMA runtime log sent with every quote when present (default, for --attester tpm: "+attest.DefaultIMALog+"; - for none)")
		measures measureFlag
	)
	fs.Var(&measures, "measure", "measure a component before attesting: TYPE:NAME:VERSION:FILE, TYPE one of boot, os, agent, application (repeatable)")
	usageTo := func(w io.Writer) { fs.SetOutput(w); fmt.Fprint(w, usage); fs.PrintDefaults(); fs.SetOutput(io.Discard) }
	// The flag package writes nothing itself: --help prints the usage to stdout and exits 0, a
	// bad flag is one line on stderr.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	parse := func(args []string) error {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			usageTo(stdout)
			return errHelp
		}
		if err != nil {
			return usageError("%v (rampart-agent --help lists the flags)", err)
		}
		return nil
	}
	err := parse(args)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if *showVer {
		_, err := fmt.Fprintln(stdout, "rampart-agent", version)
		return err
	}
	if fs.NArg() == 0 {
		return usageError("one verb expected: enroll, attest, run, status or version (rampart-agent --help says more)")
	}
	// Flags may also follow the verb: rampart-agent ... run --once.
	verb := fs.Arg(0)
	err = parse(fs.Args()[1:])
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("one verb expected, got %q", append([]string{verb}, fs.Args()...))
	}
	if verb == "version" {
		_, err := fmt.Fprintln(stdout, "rampart-agent", version)
		return err
	}
	switch verb {
	case "enroll", "attest", "run", "status":
	default:
		return usageError("unknown verb %q (rampart-agent --help lists the verbs)", verb)
	}
	if verb != "status" && (*server == "" || *caFile == "") {
		return usageError("%s needs --server and --ca-file (or RAMPART_SERVER and RAMPART_CA_FILE)", verb)
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	var roots *x509.CertPool
	if *caFile != "" {
		if roots, err = loadRoots(*caFile); err != nil {
			return err
		}
	}
	if *output != "table" && *output != "json" {
		return usageError("--output %q is not table or json", *output)
	}
	// Every verb works on the same runner: one boot ID, one measurement log, and what it
	// measures is what the device booted (the agent, the booted slot's images, --measure).
	cfg := runner.Config{Server: *server, RootCAs: roots, StateDir: *state, SlotsDir: *slots, Attester: *attester,
		Simulator: simulatorBackend, Platform: attest.PlatformLogs{EventLog: *eventLog, IMALog: *imaLog}, SpoolDir: *spool, Interval: *interval, AgentVersion: version, Logger: logger}
	if self, err := os.Executable(); err == nil {
		cfg.AgentPath = self
	}
	if cfg.Measures, err = parseMeasures(measures); err != nil {
		return err
	}
	if *reboot != "" {
		cfg.RebootCommand = strings.Fields(*reboot)
	}
	if *health != "" {
		cfg.Health = runner.HealthCommand(strings.Fields(*health))
	}
	if *raucBus != "" {
		if verb == "run" && len(cfg.RebootCommand) == 0 {
			return usageError("--rauc-bus needs --reboot-cmd: RAUC's installs finish with a reboot")
		}
		in, err := rauc.New(rauc.Config{Bus: *raucBus, RebootCommand: cfg.RebootCommand, Logger: logger})
		if err != nil {
			return public.Wrap(ErrUsage, public.Invalid, "%s", Message(err))
		}
		cfg.Installers = append(cfg.Installers, in)
	}
	if *modDir != "" {
		mods, err := module.Open(module.Config{Dir: *modDir, StateTimeout: *modTime, RebootCommand: cfg.RebootCommand, DeviceType: *devType, Logger: logger})
		if err != nil {
			return public.Wrap(ErrUsage, public.Invalid, "%s", Message(err))
		}
		for _, m := range mods {
			cfg.Installers = append(cfg.Installers, m)
		}
	}
	for _, pin := range []struct {
		path string
		dst  *[]byte
	}{{*repoRoot, &cfg.RepoRoot}, {*dirRoot, &cfg.DirectorRoot}} {
		if pin.path != "" {
			if *pin.dst, err = os.ReadFile(pin.path); err != nil {
				return err
			}
		}
	}
	return runVerb(ctx, verb, cfg, *once, *output == "json", stdout)
}

// runVerb runs a verb: `status` on the state folder alone, the others on a runner.
func runVerb(ctx context.Context, verb string, cfg runner.Config, once, asJSON bool, stdout io.Writer) error {
	if verb == "status" {
		// Status opens neither the attester nor the server, and writes nothing.
		st, err := runner.ReadStatus(cfg)
		if err != nil {
			return err
		}
		return printStatus(st, asJSON, stdout)
	}
	r, err := runner.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	switch verb {
	case "enroll":
		if err := r.Enroll(ctx); err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, r.DeviceID())
		return err
	case "attest":
		resp, err := r.AttestNow(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			DeviceID   string             `json:"device_id"`
			Status     deviceapi.Status   `json:"status"`
			UpdateOnly bool               `json:"update_only"`
			Reasons    []deviceapi.Reason `json:"reasons,omitempty"`
			RenewAt    any                `json:"renew_at"`
		}{r.DeviceID(), resp.Status, resp.UpdateOnly, resp.Reasons, resp.RenewAt})
	}
	if verb == "run" {
		if once {
			err = r.Once(ctx)
		} else {
			err = r.Run(ctx)
		}
		if err != nil || !once {
			return err
		}
	}
	return printStatus(r.Status(), true, stdout)
}

// printStatus prints st as JSON or as a two-column table.
func printStatus(st runner.Status, asJSON bool, stdout io.Writer) error {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("device", st.DeviceID)
	row("attester", st.Attester)
	row("release", orDash(st.Release))
	row("slot", orDash(st.Slot))
	row("trial boot", st.Trial)
	row("installer", orDash(st.Installer))
	row("installers", strings.Join(st.Installers, ", "))
	if st.Install != "" {
		row("install under way", st.Install)
	}
	if st.LastFailure != "" {
		row("last failure", st.LastFailure)
	}
	if st.RAUC != nil {
		row("booted slot (RAUC)", orDash(st.BootedSlot))
		if st.RAUC.Error != "" {
			row("RAUC", st.RAUC.Error)
		}
		for _, sl := range st.RAUC.Slots {
			row("RAUC slot "+sl.Name, fmt.Sprintf("bootname=%s state=%s boot-status=%s version=%s", orDash(sl.Bootname), orDash(sl.State), orDash(sl.BootStatus), orDash(sl.Version)))
		}
	}
	row("update-only certificate", st.UpdateOnly)
	if st.CertNotAfter != nil {
		row("certificate expires", st.CertNotAfter.Format(time.RFC3339))
	}
	row("pending crash reports", st.PendingCrashes)
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func parseMeasures(ms measureFlag) ([]runner.Measure, error) {
	var out []runner.Measure
	for _, m := range ms {
		parts := strings.SplitN(m, ":", 4)
		if len(parts) != 4 {
			return nil, usageError("--measure %q: want TYPE:NAME:VERSION:FILE", m)
		}
		out = append(out, runner.Measure{Type: deviceapi.EventType(parts[0]), Name: parts[1], Version: parts[2], Path: parts[3]})
	}
	return out, nil
}

func loadRoots(path string) (*x509.CertPool, error) {
	pool, err := certpool.FromFile(path)
	if errors.Is(err, certpool.ErrNoCertificate) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate", path)
	}
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	return pool, nil
}
