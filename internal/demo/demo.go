package demo

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/advisory"
	"github.com/rampartsec/rampart/internal/certpool"
	"github.com/rampartsec/rampart/internal/coverage"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/sim"
)

//go:embed program.yaml
var programRules []byte

// The story's names.
const (
	Tenant     = "acme"
	Product    = "edge-gateway"
	Group      = "Production"
	Program    = "edge-challenge"
	Vulnerable = "1.0.0"
	Fixed      = "1.0.1"
)

// Files the demo writes into its folder.
const (
	ChartFile  = "coverage.svg"
	RecordFile = "demo.json"
	// AdvisoryFile is the CSAF 2.0 advisory of the demo's report (number 1 of its
	// program), under the name the standard derives from its tracking ID.
	AdvisoryFile = "rampart-edge-challenge-1.json"
)

// Config is what `rampart demo` takes.
type Config struct {
	// Devices is the size of the simulated fleet; 1,000 when zero.
	Devices int
	// Dir receives the server's data, the devices' state, the chart and the record; a new
	// temporary folder when empty.
	Dir string
	// Out receives the progress and the timeline.
	Out io.Writer
	// CLI runs one `rampart` command line in-process and returns its exit code (cli.Run): the
	// demo drives the server with the verbs a user types.
	CLI func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	// ImageSize is the size of the simulated root file system image; 256 KiB when zero.
	ImageSize int
	// Timeout bounds each wait for the fleet; 10 minutes when zero.
	Timeout time.Duration
	Logger  *slog.Logger
	// Listen is the server's address; 127.0.0.1 on a free port when empty.
	Listen string
	// Serve keeps the server and the fleet running after the story, until ctx ends, and prints
	// the web console's address and the tokens to sign in with.
	Serve bool
}

// Event is one line of the timeline.
type Event struct {
	At     time.Time `json:"at"`
	Offset float64   `json:"seconds_since_report"` // negative before the report
	What   string    `json:"what"`
}

// Record is the JSON record of a run (demo.json). Every duration in it is in seconds.
type Record struct {
	Devices    int               `json:"devices"`
	Dir        string            `json:"dir"`
	DirBytes   int64             `json:"dir_bytes"` // what the run left in Dir
	Started    time.Time         `json:"started"`
	Seconds    float64           `json:"seconds"`
	Setup      []Event           `json:"setup"`
	Timeline   []Event           `json:"timeline"`
	Coverage   []Point           `json:"coverage"` // share of the group on the fix, as the server saw it
	Milestones []Milestone       `json:"milestones"`
	Fleet      sim.Progress      `json:"fleet"`
	Files      map[string]string `json:"files"`
}

// Milestone is when the fix first ran on a share of the group, as the server's coverage says,
// measured from the demo's emergency deployment: the figure the demo prints.
type Milestone struct {
	Percent                float64   `json:"percent"`
	Reached                bool      `json:"reached"`
	At                     time.Time `json:"at,omitzero"`
	SecondsAfterDeployment float64   `json:"seconds_after_deployment"`
}

// ErrMissing is wrapped when a part of Rampart the story needs does not answer (not built yet,
// or refused); the message names the step.
var ErrMissing = errors.New("a part the demo needs is missing or failed")

// demo is one run.
type demo struct {
	cfg    Config
	srv    *server.Server
	url    string
	caFile string
	token  string // the acme tenant's administrator
	// researcher is the demo researcher's token, for the researcher portal.
	researcher string
	tenant     string // acme's ID
	dir        string
	devices    string // the simulated devices' disks: dir/devices, or a folder on tmpfs
	fleet      *sim.Fleet
	rec        Record
	report     time.Time
	deploy     string
	outMu      sync.Mutex // say is called from the progress ticker too
}

// Run plays the story: an embedded server, a tenant with a product and its groups, a simulated
// fleet enrolled, claimed and running 1.0.0; then a researcher's report, the revocation of
// 1.0.0 (its devices drop to update-only certificates), the fix 1.0.1 signed and deployed as an
// emergency, and the fleet healing to 100 %. It prints the timeline and writes the chart and
// the record into the folder.
func Run(ctx context.Context, cfg Config) (Record, error) {
	if cfg.Devices == 0 {
		cfg.Devices = 1000
	}
	if cfg.Devices < 1 || cfg.CLI == nil || cfg.Out == nil {
		return Record{}, errors.New("demo.Run: at least one device, the CLI and an output are required")
	}
	// The demo's server holds the other end of every device's connection in the same process.
	if err := sim.CheckOpenFiles(cfg.Devices, 2*sim.FilesPerDevice); err != nil {
		return Record{}, err
	}
	if cfg.ImageSize == 0 {
		cfg.ImageSize = 256 << 10
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &demo{cfg: cfg, dir: cfg.Dir}
	if d.dir == "" {
		var err error
		if d.dir, err = os.MkdirTemp("", "rampart-demo-"); err != nil {
			return Record{}, public.Wrap(err, public.Unavailable, "cannot create a temporary folder for the demo (%v); give one with --data", err)
		}
	} else if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return Record{}, public.Wrap(err, public.Invalid, "cannot create the demo's folder (%v); give another --data", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(d.dir, "server")); len(entries) > 0 {
		return Record{}, public.Errorf(public.Conflict, "%s already holds a demo; give an empty --data folder", d.dir)
	}
	d.rec = Record{Devices: cfg.Devices, Dir: d.dir, Started: time.Now().UTC(), Files: map[string]string{}}
	d.devices = filepath.Join(d.dir, "devices")
	if cfg.Dir == "" {
		// The simulated devices' disks go on tmpfs when it has room: they are not what the demo
		// shows, and on a real disk their fsyncs cost the fleet a fifth of its CPU. They hold
		// memory, so they go at the end of the run; the server's data, the chart and the record
		// stay in the temporary folder.
		if mem, err := sim.MemoryDir(cfg.Devices); err == nil {
			d.devices = mem
			defer os.RemoveAll(mem)
			d.say("data in %s, a new temporary folder that stays after the run (--data chooses the folder); the devices' disks in memory under %s, removed at the end", d.dir, mem)
		} else {
			d.say("data in %s, a new temporary folder that stays after the run (about 0.6 MB per device; --data chooses the folder); the devices' disks there too: %v", d.dir, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done, err := d.startServer(ctx)
	if err != nil {
		return d.rec, err
	}
	defer func() { cancel(); <-done }()
	defer func() {
		if d.fleet != nil {
			d.fleet.Close()
		}
	}()
	err = d.play(ctx)
	if d.fleet != nil {
		d.rec.Fleet = d.fleet.Progress()
	}
	d.rec.Seconds = time.Since(d.rec.Started).Seconds()
	if err != nil {
		return d.rec, err
	}
	if err := d.write(); err != nil {
		return d.rec, err
	}
	if cfg.Serve {
		d.serve(ctx)
	}
	return d.rec, nil
}

// serve prints where the console is and how to sign in, and keeps the server and the fleet
// running until ctx ends (an interrupt).
func (d *demo) serve(ctx context.Context) {
	fmt.Fprintf(d.cfg.Out, "\nConsole:  %s/login  (sign in with the token below)\n", d.url)
	fmt.Fprintf(d.cfg.Out, "Token:    %s  (%s's administrator)\n", d.token, Tenant)
	fmt.Fprintf(d.cfg.Out, "Portal:   %s/research/login  (the researcher's token: %s)\n", d.url, d.researcher)
	fmt.Fprintf(d.cfg.Out, "The server's certificate is the demo's own: your browser warns until it trusts %s.\n", d.caFile)
	fmt.Fprintf(d.cfg.Out, "Serving until interrupted (Ctrl-C); the %d devices keep checking in.\n", d.cfg.Devices)
	<-ctx.Done()
	fmt.Fprintf(d.cfg.Out, "Stopped.\n")
}

func (d *demo) say(format string, a ...any) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	fmt.Fprintf(d.cfg.Out, "[%6.1fs] %s\n", time.Since(d.rec.Started).Seconds(), fmt.Sprintf(format, a...))
}

// setup records one setup step.
func (d *demo) setup(what string) {
	d.rec.Setup = append(d.rec.Setup, Event{At: time.Now().UTC(), What: what})
	d.say("%s", what)
}

// mark records one moment of the story.
func (d *demo) mark(what string) time.Time {
	now := time.Now().UTC()
	d.rec.Timeline = append(d.rec.Timeline, Event{At: now, What: what})
	d.say("%s", what)
	return now
}

func (d *demo) startServer(ctx context.Context) (<-chan error, error) {
	addrc := make(chan net.Addr, 1)
	dir := filepath.Join(d.dir, "server")
	// Rate limits off: a thousand devices enrol from one address.
	listen := d.cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	s, err := server.New(ctx, server.Config{DataDir: dir, Listen: listen, Logger: d.cfg.Logger,
		Ready: func(a net.Addr) { addrc <- a }})
	if err != nil {
		return nil, fmt.Errorf("demo: start the server: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case a := <-addrc:
		d.url = "https://" + a.String()
	case err := <-done:
		return nil, fmt.Errorf("demo: start the server: %w", err)
	}
	d.srv, d.caFile = s, filepath.Join(dir, server.ServiceCAFile)
	tok, err := os.ReadFile(filepath.Join(dir, server.AdminTokenFile))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d.token = strings.TrimSpace(string(tok))
	d.setup("server listening on " + d.url + " (SQLite under " + dir + ")")
	return done, nil
}

// rampart runs one CLI command line with the given token and returns its standard output.
func (d *demo) rampart(ctx context.Context, token string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	full := append([]string{"--server", d.url, "--ca-file", d.caFile, "--token", token}, args...)
	if code := d.cfg.CLI(ctx, full, &out, &errb); code != 0 {
		// The CLI printed its one sentence, "rampart: ...", on the last line.
		verb := "rampart " + strings.Join(args[:min(2, len(args))], " ")
		said := strings.TrimPrefix(strings.TrimSpace(errb.String()), "rampart: ")
		return "", public.Wrap(fmt.Errorf("%w: %s: %s", ErrMissing, verb, said), public.Unavailable, "the demo stopped at %s: %s", verb, said)
	}
	return out.String(), nil
}

func (d *demo) play(ctx context.Context) error {
	if err := d.prepare(ctx); err != nil {
		return err
	}
	if err := d.startFleet(ctx); err != nil {
		return err
	}
	return d.story(ctx)
}

// prepare makes the tenant, its administrator, the product, the offline keys, release 1.0.0
// and the research program.
func (d *demo) prepare(ctx context.Context) error {
	if _, err := d.rampart(ctx, d.token, "tenant", "create", Tenant); err != nil {
		return err
	}
	tok, err := d.rampart(ctx, d.token, "token", "create", "--tenant", Tenant, "--role", "admin")
	if err != nil {
		return err
	}
	d.token = strings.TrimSpace(tok)
	tn, err := d.srv.Store().TenantByName(ctx, Tenant)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.tenant = tn.ID
	if _, err := d.rampart(ctx, d.token, "product", "create", Product); err != nil {
		return err
	}
	if _, err := d.rampart(ctx, d.token, "product", "policy", Product, "--accept-software=true"); err != nil {
		return err
	}
	d.setup("tenant " + Tenant + " with its administrator token; product " + Product + " with groups Development, Field Test, Production")
	keys, pass := filepath.Join(d.dir, "keys"), filepath.Join(d.dir, "keys.passphrase")
	if err := os.WriteFile(pass, []byte(fmt.Sprintf("demo passphrase %x\n", rand.Uint64())), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := d.rampart(ctx, d.token, "keys", "init", "--dir", keys, "--passphrase-file", pass); err != nil {
		return err
	}
	d.setup("offline root and targets keys in " + keys)
	if err := d.release(ctx, Vulnerable, 0); err != nil {
		return err
	}
	rules := filepath.Join(d.dir, "program.yaml")
	if err := os.WriteFile(rules, programRules, 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := d.rampart(ctx, d.token, "program", "create", Program, "--rules", rules); err != nil {
		return err
	}
	d.setup("research program " + Program + " open")
	return nil
}

// release builds a root file system image, adds it, and creates and signs a release. Images of
// later releases differ from the first in a few places, so devices get them by delta.
func (d *demo) release(ctx context.Context, version string, changes int) error {
	r := rand.New(rand.NewPCG(42, 42))
	img := make([]byte, d.cfg.ImageSize)
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	cr := rand.New(rand.NewPCG(uint64(changes), 7))
	for range changes {
		off := cr.IntN(len(img) - 64)
		for j := range 64 {
			img[off+j] ^= 0x5a
		}
	}
	dir := filepath.Join(d.dir, "images")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	path := filepath.Join(dir, "rootfs-"+version+".img")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	id, err := d.rampart(ctx, d.token, "image", "add", path, "--component", "rootfs", "--version", version, "--security-version", "1")
	if err != nil {
		return err
	}
	if _, err := d.rampart(ctx, d.token, "release", "create", "--product", Product, "--version", version, "--image", strings.TrimSpace(id)); err != nil {
		return err
	}
	if _, err := d.rampart(ctx, d.token, "release", "sign", "--product", Product, "--version", version,
		"--keys", filepath.Join(d.dir, "keys"), "--passphrase-file", filepath.Join(d.dir, "keys.passphrase")); err != nil {
		return err
	}
	return nil
}

// emergency deploys version to the whole group at once with `rampart deployment create
// --emergency` (the server wakes the group's waiting devices), ending the group's previous
// deployment first when it is still open.
func (d *demo) emergency(ctx context.Context, version string) error {
	if d.deploy != "" {
		out, err := d.rampart(ctx, d.token, "-o", "json", "deployment", "show", d.deploy)
		if err != nil {
			return err
		}
		var prev client.Deployment
		if err := json.Unmarshal([]byte(out), &prev); err != nil {
			return fmt.Errorf("%w: deployment show answered %q", ErrMissing, out)
		}
		if prev.State == "active" || prev.State == "paused" {
			if _, err := d.rampart(ctx, d.token, "deployment", "abort", d.deploy, "--reason", "superseded by the emergency fix"); err != nil {
				return err
			}
		}
	}
	out, err := d.rampart(ctx, d.token, "-o", "json", "deployment", "create", "--product", Product, "--group", Group,
		"--release", version, "--emergency")
	if err != nil {
		return err
	}
	var dep client.Deployment
	if err := json.Unmarshal([]byte(out), &dep); err != nil || dep.ID == "" {
		return fmt.Errorf("%w: deployment create answered %q", ErrMissing, out)
	}
	d.deploy = dep.ID
	return nil
}

// startFleet enrols and claims the fleet, deploys 1.0.0 and waits until every device runs it.
func (d *demo) startFleet(ctx context.Context) error {
	roots, err := certpool.FromFile(d.caFile)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	f, err := sim.New(ctx, sim.Config{Server: d.url, RootCAs: roots, Dir: d.devices, Devices: d.cfg.Devices,
		Logger: d.cfg.Logger})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.fleet = f
	d.setup(fmt.Sprintf("%d simulated devices, each a real agent with its own identity key under %s", d.cfg.Devices, d.devices))
	if err := f.Enroll(ctx); err != nil {
		return fmt.Errorf("%w: enrolment: %w", ErrMissing, err)
	}
	c, err := client.New(d.url, client.WithToken(d.token), client.WithCAFile(d.caFile))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := f.Claim(ctx, c, Product, Group); err != nil {
		return fmt.Errorf("%w: claim: %w", ErrMissing, err)
	}
	d.setup(fmt.Sprintf("%d devices enrolled and claimed into %s/%s", d.cfg.Devices, Product, Group))
	if err := d.emergency(ctx, Vulnerable); err != nil {
		return err
	}
	// The first check-ins (attest, install 1.0.0, boot it, attest again) take a while: show them.
	started := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-started:
				return
			case <-t.C:
				d.say("  %s", f.Progress())
			}
		}
	}()
	err = f.Start(ctx)
	close(started)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	go f.Run(ctx)
	p, err := d.until(ctx, func(p sim.Progress) bool { return p.Releases[Vulnerable] == p.Online && p.Attested == p.Online })
	if err != nil {
		return d.stuck(err, "the fleet did not reach "+Vulnerable)
	}
	d.setup(fmt.Sprintf("fleet attested and running %s: %d devices, %d with normal certificates", Vulnerable, p.Releases[Vulnerable], p.Attested-p.UpdateOnly))
	return nil
}

// stuck is a wait for the fleet that ended before its goal: on --timeout, or on an interrupt.
func (d *demo) stuck(err error, what string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return public.Wrap(err, public.Unavailable, "%s within --timeout %s; give a longer --timeout, or --log-level info to see why", what, d.cfg.Timeout)
	}
	return public.Wrap(err, public.Unavailable, "%s: the demo was interrupted", what)
}

// until waits for cond on the fleet's progress, printing it every few seconds.
func (d *demo) until(ctx context.Context, cond func(sim.Progress) bool) (sim.Progress, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for {
		p := d.fleet.Progress()
		if cond(p) {
			return p, nil
		}
		if time.Since(last) > 5*time.Second {
			d.say("  %s", p)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return p, fmt.Errorf("%w (%s)", ctx.Err(), p)
		case <-tick.C:
		}
	}
}

// story plays the vulnerability loop.
func (d *demo) story(ctx context.Context) error {
	// A researcher applies to the program, is accepted, and reports the bug.
	out, err := d.rampart(ctx, "", "-o", "json", "research", "apply", "--tenant", Tenant, "--program", Program,
		"--name", "Ada Lovelace", "--email", "ada@example.org", "--country", "GB", "--experience", "embedded exploitation")
	if err != nil {
		return err
	}
	var applied struct {
		Application struct{ ID string } `json:"application"`
		Token       string              `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &applied); err != nil || applied.Token == "" {
		return fmt.Errorf("%w: research apply answered %q", ErrMissing, out)
	}
	d.researcher = applied.Token
	if _, err := d.rampart(ctx, d.token, "program", "accept", Program, applied.Application.ID); err != nil {
		return err
	}
	reportFile := filepath.Join(d.dir, "report.json")
	body := `{"title":"Heap overflow in the update manifest parser","description":"A crafted manifest overflows a heap buffer in the update agent; code execution as root before signature checks.",
"scenario":"remote-code-execution","product":"` + Product + `","components":["update-agent"],"releases":["` + Vulnerable + `"],
"cvss31":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}`
	if err := os.WriteFile(reportFile, []byte(body), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	out, err = d.rampart(ctx, applied.Token, "-o", "json", "research", "submit", "--program", Program, "--file", reportFile)
	if err != nil {
		return err
	}
	var rep struct {
		Number int64 `json:"number"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Number == 0 {
		return fmt.Errorf("%w: research submit answered %q", ErrMissing, out)
	}
	number := fmt.Sprint(rep.Number)
	d.report = d.mark(fmt.Sprintf("report %s received: heap overflow in the update manifest parser (CVSS 9.8) against %s", number, Vulnerable))

	if _, err := d.rampart(ctx, d.token, "report", "triage", number, "--state", "triaged", "--impact", "remote-code-execution",
		"--severity", "critical", "--quality", "high"); err != nil {
		return err
	}
	d.mark("report " + number + " triaged: valid, critical")

	// Revoke the vulnerable release: the server demotes the devices that run it at once and wakes
	// them; each agent attests again on its own and drops to an update-only certificate.
	if _, err := d.rampart(ctx, d.token, "release", "revoke", "--product", Product, "--version", Vulnerable,
		"--reason", "report "+number+": heap overflow in the update manifest parser"); err != nil {
		return err
	}
	d.mark(Vulnerable + " revoked")
	p, err := d.until(ctx, func(p sim.Progress) bool { return p.UpdateOnly == p.Online })
	if err != nil {
		return d.stuck(err, "devices on "+Vulnerable+" did not drop to update-only certificates")
	}
	d.mark(fmt.Sprintf("%d devices on %s re-attested: contraindicated (revoked component), update-only certificates", p.UpdateOnly, Vulnerable))

	// The fix.
	if err := d.release(ctx, Fixed, 3); err != nil {
		return err
	}
	d.mark(Fixed + " signed with the offline keys (a delta from " + Vulnerable + ")")
	if _, err := d.rampart(ctx, d.token, "report", "link-fix", number, "--fixed", Fixed, "--affected", Vulnerable); err != nil {
		return err
	}
	if err := d.emergency(ctx, Fixed); err != nil {
		return err
	}
	deployed := d.mark("emergency deployment of " + Fixed + " to " + Product + "/" + Group)

	// Follow the fleet as the server sees it, until every device runs the fix.
	if err := d.follow(ctx, deployed); err != nil {
		return err
	}
	if _, err := d.until(ctx, func(p sim.Progress) bool { return p.Releases[Fixed] == p.Online && p.UpdateOnly == 0 }); err != nil {
		return d.stuck(err, "the fleet did not settle on "+Fixed)
	}
	d.mark(fmt.Sprintf("every device runs %s and holds a normal certificate again", Fixed))
	// Into the folder: the CLI names the file as CSAF 2.0 does.
	if _, err := d.rampart(ctx, d.token, "advisory", "export", "--report", number, "--format", "csaf", "--out", d.dir+string(filepath.Separator)); err != nil {
		return err
	}
	adv := filepath.Join(d.dir, advisory.FileName(advisory.FormatCSAF, "RAMPART-"+strings.ToUpper(Program)+"-"+number))
	d.rec.Files["advisory"] = adv
	d.mark("advisory exported (CSAF 2.0)")
	return nil
}

// Coverage sampling of follow: the server's coverage every sampleEvery, and at once when the
// fleet says every device runs the fix. Reading the coverage reads the group's whole history, so
// sampling it every 100 ms, as the demo did, took a seventh of the CPU of the heal it measured
// (14 % in a 1,000-device profile); the milestones come from the devices' report times either way.
const (
	sampleEvery = 500 * time.Millisecond
	checkEvery  = 50 * time.Millisecond
)

// follow samples the server's coverage of the group until the fix reaches 100 %, marking the
// 50, 90, 99 and 100 % moments.
func (d *demo) follow(ctx context.Context, since time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	st := d.srv.Store()
	next := 0
	thresholds := coverage.DefaultThresholds()
	last := time.Now()
	var sampled time.Time
	for {
		// Until the next sample, the fleet's own count (in memory) says whether all are done.
		if time.Since(sampled) < sampleEvery {
			if p := d.fleet.Progress(); p.Releases[Fixed] < p.Online {
				select {
				case <-ctx.Done():
					return d.stuck(ctx.Err(), fmt.Sprintf("coverage of %s stopped before 100 %%", Fixed))
				case <-time.After(checkEvery):
				}
				continue
			}
		}
		sampled = time.Now()
		rep, err := st.Coverage(ctx, d.tenant, Product, Group)
		if err != nil {
			return fmt.Errorf("%w: coverage: %w", ErrMissing, err)
		}
		share := 0.0
		for _, r := range rep.Now.PerRelease {
			if r.Release == Fixed {
				share = r.Share
			}
		}
		now := time.Now().UTC()
		d.rec.Coverage = append(d.rec.Coverage, Point{At: now, Share: share})
		for next < len(thresholds) && share >= thresholds[next] {
			next++
		}
		if share >= 1 {
			for _, r := range rep.Releases {
				if r.Release != Fixed {
					continue
				}
				for _, m := range r.Milestones {
					// One figure, printed and recorded alike: since the deployment the demo made.
					rm := Milestone{Percent: m.Threshold * 100, Reached: m.Reached && !m.At.IsZero()}
					if rm.Reached {
						rm.At = m.At.UTC()
						rm.SecondsAfterDeployment = math.Round(m.At.Sub(since).Seconds()*10) / 10
					}
					d.rec.Milestones = append(d.rec.Milestones, rm)
				}
			}
			for _, m := range d.rec.Milestones {
				if !m.Reached {
					continue
				}
				after := fmt.Sprintf("%.1fs", m.SecondsAfterDeployment)
				d.rec.Timeline = append(d.rec.Timeline, Event{At: m.At, What: fmt.Sprintf("%.0f %% of the fleet on %s (%s after the deployment)",
					m.Percent, Fixed, after)})
				d.say("%.0f %% of the fleet on %s, %s after the deployment", m.Percent, Fixed, after)
			}
			return nil
		}
		if time.Since(last) > 5*time.Second {
			d.say("  %.1f %% on %s", share*100, Fixed)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return d.stuck(ctx.Err(), fmt.Sprintf("coverage of %s stopped at %.1f %%", Fixed, share*100))
		case <-time.After(checkEvery):
		}
	}
}

// write prints the timeline and writes the chart and the record.
func (d *demo) write() error {
	marks := []Mark{}
	for i := range d.rec.Timeline {
		e := &d.rec.Timeline[i]
		e.Offset = e.At.Sub(d.report).Seconds()
	}
	sortEvents(d.rec.Timeline)
	for _, e := range d.rec.Timeline {
		if label := shortLabel(e.What); label != "" {
			marks = append(marks, Mark{At: e.At, Label: label})
		}
	}
	fmt.Fprintf(d.cfg.Out, "\nTimeline (since the report):\n")
	for _, e := range d.rec.Timeline {
		fmt.Fprintf(d.cfg.Out, "  %9s  %s\n", "+"+formatOffset(e.At.Sub(d.report)), e.What)
	}
	points := append([]Point{{At: d.report, Share: 0}}, d.rec.Coverage...)
	chart := Chart{Title: fmt.Sprintf("%s: share of %d devices on the fix %s", Product, d.cfg.Devices, Fixed), Points: points, Marks: marks}
	var svg bytes.Buffer
	if err := chart.WriteSVG(&svg); err != nil {
		return err
	}
	chartPath := filepath.Join(d.dir, ChartFile)
	if err := os.WriteFile(chartPath, svg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	recordPath := filepath.Join(d.dir, RecordFile)
	d.rec.Files["chart"], d.rec.Files["record"] = chartPath, recordPath
	d.rec.DirBytes = dirBytes(d.dir)
	b, err := json.MarshalIndent(d.rec, "", "  ")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(recordPath, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(d.cfg.Out, "\nFleet: %s\n", d.fleet.Progress())
	fmt.Fprintf(d.cfg.Out, "Chart:    %s (open it in a browser)\nRecord:   %s\nAdvisory: %s\n",
		chartPath, recordPath, d.rec.Files["advisory"])
	what := fmt.Sprintf("the server, %d devices' slots and state", d.cfg.Devices)
	if !strings.HasPrefix(d.devices, d.dir+string(filepath.Separator)) {
		what = "the server; the devices' disks in memory go at the end of the run"
	}
	fmt.Fprintf(d.cfg.Out, "Data:     %s holds %s (%s); remove it with rm -rf %s\n",
		d.dir, formatBytes(d.rec.DirBytes), what, d.dir)
	fmt.Fprintf(d.cfg.Out, "Done in %s.\n", time.Since(d.rec.Started).Round(100*time.Millisecond))
	return nil
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// formatBytes is a size for people: 612 MB, 3.4 MB, 980 kB.
func formatBytes(n int64) string {
	switch {
	case n >= 100e6:
		return fmt.Sprintf("%.0f MB", float64(n)/1e6)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.0f kB", float64(n)/1e3)
}

// shortLabel is the chart's label for a timeline event; "" leaves it off the chart.
func shortLabel(what string) string {
	switch {
	case strings.HasPrefix(what, "report ") && strings.Contains(what, "received"):
		return "report"
	case strings.HasSuffix(what, " revoked"):
		return "revoke"
	case strings.Contains(what, " signed"):
		return "fix signed"
	case strings.HasPrefix(what, "emergency deployment"):
		return "deploy"
	case strings.Contains(what, "% of the fleet"):
		return strings.SplitN(what, " of the fleet", 2)[0]
	}
	return ""
}

func sortEvents(es []Event) {
	slices.SortStableFunc(es, func(a, b Event) int { return a.At.Compare(b.At) })
}
