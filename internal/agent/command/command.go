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
	"path/filepath"
	"strings"

	"github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/agent/identity"
	"github.com/rampartsec/rampart/internal/attest/wire"
)

// ErrUsage marks a command line that cannot be run; main exits 2 for it.
var ErrUsage = errors.New("usage")

const usage = `usage: rampart-agent --server URL --ca-file FILE --state DIR --attester software|tpm|swtpm:HOST:PORT|simulator VERB

verbs:
  enroll    register this device with the server and print its device ID
  attest    attest once (enrolling again if needed) and print the verdict
  run       keep the device updated: [--once] [--slots DIR] [--repo-root FILE] [--director-root FILE] [--interval D]
  status    print the A/B slot state as JSON: [--slots DIR]
  version   print the agent's version

flags:
`

// measureFlag collects --measure TYPE:NAME:VERSION:FILE values.
type measureFlag []string

func (m *measureFlag) String() string     { return strings.Join(*m, ",") }
func (m *measureFlag) Set(v string) error { *m = append(*m, v); return nil }

// Run runs the agent with args (without the program name).
func Run(ctx context.Context, args []string, version string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rampart-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		server   = fs.String("server", os.Getenv("RAMPART_SERVER"), "server URL, e.g. https://rampart.example:8443")
		caFile   = fs.String("ca-file", os.Getenv("RAMPART_CA_FILE"), "CA certificate (PEM) that signed the server's certificate")
		state    = fs.String("state", "/var/lib/rampart-agent", "state folder: keys or key blobs, measurement log, device certificate")
		attester = fs.String("attester", "tpm", "attester backend: software, tpm, swtpm:HOST:PORT or simulator")
		verbose  = fs.Bool("v", false, "log progress to stderr")
		measures measureFlag
	)
	fs.Var(&measures, "measure", "measure a component before attesting: TYPE:NAME:VERSION:FILE, TYPE one of boot, os, agent, application (repeatable)")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return fmt.Errorf("%w: one verb expected", ErrUsage)
	}
	verb := fs.Arg(0)
	var uf updateFlags
	switch verb {
	case "run", "status":
		var err error
		if uf, err = parseUpdateFlags(verb, *state, fs.Args()[1:], stderr); err != nil {
			return err
		}
		if verb == "status" {
			return status(uf, stdout)
		}
	default:
		if fs.NArg() != 1 {
			fs.Usage()
			return fmt.Errorf("%w: %s takes no arguments", ErrUsage, verb)
		}
	}
	if verb == "version" {
		_, err := fmt.Fprintln(stdout, "rampart-agent", version)
		return err
	}
	if verb != "enroll" && verb != "attest" && verb != "run" {
		fs.Usage()
		return fmt.Errorf("%w: unknown verb %q", ErrUsage, verb)
	}
	if *server == "" || *caFile == "" {
		return fmt.Errorf("%w: --server and --ca-file are required", ErrUsage)
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	roots, err := loadRoots(*caFile)
	if err != nil {
		return err
	}
	a, err := attest.Open(ctx, attest.Config{Spec: *attester, StateDir: *state, Logger: logger})
	if err != nil {
		return err
	}
	defer a.Close()
	bootID, err := attest.CurrentBootID()
	if err != nil {
		return err
	}
	log, err := attest.OpenLog(filepath.Join(*state, "measurements.json"), bootID)
	if err != nil {
		return err
	}
	if err := measure(ctx, a, log, measures, version); err != nil {
		return err
	}
	id, err := identity.New(ctx, identity.Config{Server: *server, RootCAs: roots, Attester: a, Log: log, StateDir: *state, Logger: logger})
	if err != nil {
		return err
	}
	switch verb {
	case "run":
		return run(ctx, uf, *server, *state, id, logger, stdout)
	case "enroll":
		if _, err := id.Enroll(ctx); err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, id.DeviceID())
		return err
	default:
		resp, err := id.Attest(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			DeviceID   string        `json:"device_id"`
			Status     wire.Status   `json:"status"`
			UpdateOnly bool          `json:"update_only"`
			Reasons    []wire.Reason `json:"reasons,omitempty"`
			RenewAt    any           `json:"renew_at"`
		}{id.DeviceID(), resp.Status, resp.UpdateOnly, resp.Reasons, resp.RenewAt})
	}
}

// measure extends the agent's own binary and every --measure component into the PCRs, once
// per boot.
func measure(ctx context.Context, a attest.Attester, log *attest.MeasurementLog, extra measureFlag, version string) error {
	type item struct {
		typ                 wire.EventType
		name, version, path string
	}
	var items []item
	if self, err := os.Executable(); err == nil {
		items = append(items, item{wire.EventAgent, "rampart-agent", version, self})
	}
	for _, m := range extra {
		parts := strings.SplitN(m, ":", 4)
		if len(parts) != 4 {
			return fmt.Errorf("%w: --measure %q: want TYPE:NAME:VERSION:FILE", ErrUsage, m)
		}
		items = append(items, item{wire.EventType(parts[0]), parts[1], parts[2], parts[3]})
	}
	for _, it := range items {
		digest, err := attest.FileDigest(it.path)
		if err != nil {
			return err
		}
		if log.Measured(it.typ, it.name, digest) {
			continue
		}
		if err := log.Measure(ctx, a, it.typ, it.name, it.version, digest); err != nil {
			return err
		}
	}
	return nil
}

func loadRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate", path)
	}
	return pool, nil
}
