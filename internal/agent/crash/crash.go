// Package crash is the device agent's crash collector. It reads crash files
// that applications and systemd-coredump hooks drop into a spool folder,
// turns them into failure reports, packs them into batches kept in an
// on-disk outbox that survives restarts, and removes a batch only after an
// Uploader acknowledged it.
//
// It belongs to rampart-agent: it must stay free of database, web server
// and server code (a test checks its dependencies) and build with
// CGO_ENABLED=0. Only the agent imports it.
package crash

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// Defaults for the caps in Config.
const (
	DefaultMaxSpoolBytes  = 8 << 20
	DefaultMaxOutboxBytes = 4 << 20
	DefaultMaxFileBytes   = 256 << 10
)

// ErrRejected is wrapped by an Uploader's error when the server refused a
// batch for good (malformed, too large): the batch is dropped instead of
// being retried forever.
var ErrRejected = errors.New("crash batch rejected by the server")

// Uploader sends one batch to the server. A nil error acknowledges it.
type Uploader interface {
	Upload(ctx context.Context, b deviceapi.CrashBatch) error
}

// UploaderFunc adapts a function to Uploader.
type UploaderFunc func(ctx context.Context, b deviceapi.CrashBatch) error

// Upload calls f.
func (f UploaderFunc) Upload(ctx context.Context, b deviceapi.CrashBatch) error { return f(ctx, b) }

// Config configures a Collector.
type Config struct {
	// SpoolDir is where crash files are dropped.
	SpoolDir string
	// OutboxDir holds batches waiting for upload; it must be on the same
	// file system as nothing else relies on it, and survive restarts.
	OutboxDir string
	// MaxSpoolBytes caps the spool: the oldest files beyond it are deleted
	// unread, so a crash loop cannot fill the disk.
	MaxSpoolBytes int64
	// MaxOutboxBytes caps the outbox: the oldest batches beyond it are
	// dropped when the server has been unreachable for long.
	MaxOutboxBytes int64
	// MaxFileBytes caps one crash file; larger files are rejected.
	MaxFileBytes int64
	// Describe names the image component and version a program belongs
	// to, for crash files that do not say. It may be nil.
	Describe func(program string) (component, version string)
	Logger   *slog.Logger
}

// Collector moves crashes from the spool through the outbox to the server.
// Its methods must not be called concurrently.
type Collector struct {
	cfg Config
	log *slog.Logger
}

// New checks the configuration and creates the spool and outbox folders.
func New(cfg Config) (*Collector, error) {
	if cfg.SpoolDir == "" || cfg.OutboxDir == "" {
		return nil, errors.New("crash.New: spool and outbox folders are required")
	}
	if filepath.Clean(cfg.SpoolDir) == filepath.Clean(cfg.OutboxDir) {
		return nil, errors.New("crash.New: spool and outbox must be different folders")
	}
	if cfg.MaxSpoolBytes <= 0 {
		cfg.MaxSpoolBytes = DefaultMaxSpoolBytes
	}
	if cfg.MaxOutboxBytes <= 0 {
		cfg.MaxOutboxBytes = DefaultMaxOutboxBytes
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = DefaultMaxFileBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{cfg.SpoolDir, cfg.OutboxDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("crash.New: %w", err)
		}
	}
	return &Collector{cfg: cfg, log: cfg.Logger}, nil
}

// Stats counts what one Collect or Flush did.
type Stats struct {
	Files           int `json:"files"`            // spool files read
	Reports         int `json:"reports"`          // reports queued in the outbox
	Duplicates      int `json:"duplicates"`       // reports already queued
	Ignored         int `json:"ignored"`          // files that held no crash
	Rejected        int `json:"rejected"`         // unreadable, oversized or invalid files
	DroppedFiles    int `json:"dropped_files"`    // deleted unread over the spool cap
	DroppedBatches  int `json:"dropped_batches"`  // dropped over the outbox cap or refused by the server
	Uploaded        int `json:"uploaded"`         // batches acknowledged
	UploadedReports int `json:"uploaded_reports"` // reports in acknowledged batches
}

type spoolFile struct {
	name string
	size int64
	mod  int64
}

// listFiles lists the regular files of a folder, skipping dot files and
// temporary files, oldest first.
func listFiles(dir string) ([]spoolFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []spoolFile
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".tmp") || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		out = append(out, spoolFile{name: n, size: info.Size(), mod: info.ModTime().UnixNano()})
	}
	slices.SortFunc(out, func(a, b spoolFile) int {
		return cmp.Or(cmp.Compare(a.mod, b.mod), strings.Compare(a.name, b.name))
	})
	return out, nil
}

// reportID derives a stable report ID from the bytes that describe a crash,
// so a file read twice (after a restart) yields the same ID and the server
// counts it once.
func reportID(b []byte) string {
	sum := sha256.Sum256(b)
	return "c-" + hex.EncodeToString(sum[:16])
}

// Collect reads the spool into the outbox. Files whose reports are safely
// in the outbox are removed; rejected files are removed with a log line.
func (c *Collector) Collect(ctx context.Context) (Stats, error) {
	var st Stats
	files, err := listFiles(c.cfg.SpoolDir)
	if err != nil {
		return st, fmt.Errorf("crash.Collect: %w", err)
	}
	files = c.capSpool(files, &st)

	queued, err := c.queuedIDs()
	if err != nil {
		return st, fmt.Errorf("crash.Collect: %w", err)
	}
	var reports []deviceapi.CrashReport
	var done []string
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			break
		}
		st.Files++
		path := filepath.Join(c.cfg.SpoolDir, f.name)
		reps, err := c.readFile(path, f)
		if err != nil {
			st.Rejected++
			c.log.Warn("crash file rejected", "file", f.name, "err", err)
			c.remove(path)
			continue
		}
		if len(reps) == 0 {
			st.Ignored++
		}
		for _, r := range reps {
			if queued[r.ID] {
				st.Duplicates++
				continue
			}
			queued[r.ID] = true
			reports = append(reports, r)
		}
		done = append(done, path)
	}
	n, err := c.writeBatches(reports)
	st.Reports += n
	if err != nil {
		return st, fmt.Errorf("crash.Collect: %w", err)
	}
	for _, p := range done {
		c.remove(p)
	}
	st.DroppedBatches += c.capOutbox()
	return st, ctx.Err()
}

func (c *Collector) remove(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("crash file not removed", "file", path, "err", err)
	}
}

// capSpool deletes the oldest files until the spool fits its cap, and
// returns the files left.
func (c *Collector) capSpool(files []spoolFile, st *Stats) []spoolFile {
	var total int64
	for _, f := range files {
		total += f.size
	}
	for len(files) > 0 && total > c.cfg.MaxSpoolBytes {
		c.remove(filepath.Join(c.cfg.SpoolDir, files[0].name))
		total -= files[0].size
		files = files[1:]
		st.DroppedFiles++
	}
	if st.DroppedFiles > 0 {
		c.log.Warn("crash spool over its cap; oldest files dropped", "dropped", st.DroppedFiles, "cap_bytes", c.cfg.MaxSpoolBytes)
	}
	return files
}

// readFile parses one spool file by its extension.
func (c *Collector) readFile(path string, f spoolFile) ([]deviceapi.CrashReport, error) {
	if f.size > c.cfg.MaxFileBytes {
		return nil, fmt.Errorf("file is %d bytes, at most %d", f.size, c.cfg.MaxFileBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > c.cfg.MaxFileBytes {
		return nil, fmt.Errorf("file is %d bytes, at most %d", len(b), c.cfg.MaxFileBytes)
	}
	var reps []deviceapi.CrashReport
	switch filepath.Ext(f.name) {
	case ".json":
		r, err := parseSpoolJSON(b, f.mod)
		if err != nil {
			return nil, err
		}
		reps = []deviceapi.CrashReport{r}
	case ".coredump", ".journal":
		reps, err = parseJournalExport(b)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown crash file type %q (want .json, .coredump or .journal)", filepath.Ext(f.name))
	}
	for i := range reps {
		c.complete(&reps[i])
		if err := reps[i].Validate(); err != nil {
			return nil, err
		}
	}
	return reps, nil
}

// complete fills the component and version from Describe when the file did
// not carry them, and clips fields to the server's limits so a long trace
// is shortened rather than refused.
func (c *Collector) complete(r *deviceapi.CrashReport) {
	if (r.Version == "" || r.Component == "") && c.cfg.Describe != nil {
		comp, ver := c.cfg.Describe(r.Program)
		if r.Component == "" {
			r.Component = comp
		}
		if r.Version == "" {
			r.Version = ver
		}
	}
	if r.Version == "" {
		r.Version = "unknown"
	}
	r.Program = clip(r.Program, deviceapi.MaxNameLen)
	r.Component = clip(r.Component, deviceapi.MaxNameLen)
	r.Version = clip(r.Version, deviceapi.MaxVersionLen)
	r.FaultType = clip(r.FaultType, deviceapi.MaxNameLen)
	if len(r.Frames) > deviceapi.MaxFrames {
		r.Frames = r.Frames[:deviceapi.MaxFrames]
	}
	for i, f := range r.Frames {
		r.Frames[i] = clip(f, deviceapi.MaxFrameLen)
	}
	r.GoPanic = clip(r.GoPanic, deviceapi.MaxPanicLen)
}

// clip cuts s to at most n bytes on a UTF-8 boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// spoolJSON is the crash file format applications write: deviceapi.CrashReport
// with id and version optional.
type spoolJSON struct {
	ID        string   `json:"id"`
	Program   string   `json:"program"`
	Component string   `json:"component"`
	Version   string   `json:"version"`
	Signal    int      `json:"signal"`
	ExitCode  *int     `json:"exit_code"`
	FaultType string   `json:"fault_type"`
	Frames    []string `json:"frames"`
	GoPanic   string   `json:"go_panic"`
	Time      string   `json:"time"`
}

func parseSpoolJSON(b []byte, modNano int64) (deviceapi.CrashReport, error) {
	var s spoolJSON
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return deviceapi.CrashReport{}, fmt.Errorf("crash file: %w", err)
	}
	if dec.More() {
		return deviceapi.CrashReport{}, errors.New("crash file: data after the JSON value")
	}
	r := deviceapi.CrashReport{ID: s.ID, Program: s.Program, Component: s.Component, Version: s.Version, Signal: s.Signal,
		ExitCode: s.ExitCode, FaultType: s.FaultType, Frames: s.Frames, GoPanic: s.GoPanic}
	if r.ID == "" {
		r.ID = reportID(b)
	}
	if s.Time != "" {
		t, err := parseTime(s.Time)
		if err != nil {
			return deviceapi.CrashReport{}, fmt.Errorf("crash file: %w", err)
		}
		r.Time = t
	} else {
		r.Time = unixNano(modNano)
	}
	return r, nil
}

func parseSignal(s string) int {
	if n, ok := deviceapi.SignalNumber(s); ok {
		return n
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return 0
}
