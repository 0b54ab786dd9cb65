package failure

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/public"
)

// Limits on what a device may send. A report or batch over a limit is
// rejected whole, with an error naming the limit.
const (
	MaxReportBytes  = 64 << 10 // one encoded report
	MaxBatchBytes   = 1 << 20  // one encoded batch
	MaxBatchReports = 100
	MaxFrames       = 128
	MaxFrameLen     = 512
	MaxNameLen      = 256 // program, component, fault type
	MaxVersionLen   = 64
	MaxIDLen        = 64
	MaxPanicLen     = 32 << 10
	MaxSignal       = 64
	MaxExitCode     = 255
)

// Errors wrapped by every decoding and validation failure, so the edge can
// answer 413 for ErrTooLarge and 400 for ErrMalformed.
var (
	ErrTooLarge  = errors.New("crash report too large")
	ErrMalformed = errors.New("malformed crash report")
)

// Report is one crash, as written to the agent's spool and uploaded.
type Report struct {
	// ID is chosen by the device (the agent derives it from the spool
	// file), so that a batch resent after a restart is not counted twice.
	ID string `json:"id"`
	// Program is the executable's path or name.
	Program string `json:"program"`
	// Component and Version name the image component the program ships in
	// (as in the release) and its version.
	Component string `json:"component,omitempty"`
	Version   string `json:"version"`
	// Signal is the terminating signal number, 0 if none.
	Signal int `json:"signal,omitempty"`
	// ExitCode is the process's exit status when it exited without a signal.
	ExitCode *int `json:"exit_code,omitempty"`
	// FaultType names the fault ("SIGSEGV", "go panic", "oom", "exit").
	// When empty it is derived from the Go panic, the signal or the exit code.
	FaultType string `json:"fault_type,omitempty"`
	// Frames are the stack frames, innermost first, as the application
	// or the crash handler printed them.
	Frames []string `json:"frames,omitempty"`
	// GoPanic is the raw text of a Go panic ("panic: ..." through the
	// goroutine dumps). When Frames is empty, frames are parsed from it.
	GoPanic string `json:"go_panic,omitempty"`
	// Time is when the crash happened, by the device's clock.
	Time time.Time `json:"time"`
}

// Batch is what the agent uploads in one request.
type Batch struct {
	Reports []Report `json:"reports"`
}

// malformed and the ErrTooLarge errors carry their whole text as the public sentence: it
// describes only the device's own input.
func malformed(format string, args ...any) error {
	return public.Errorf(public.Invalid, "%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// decodeStrict reads one JSON value of at most limit bytes into v, refusing
// unknown fields and trailing data.
func decodeStrict(r io.Reader, limit int64, what string, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(b)) > limit {
		return public.Errorf(public.TooLarge, "%w: %s is over %d bytes", ErrTooLarge, what, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed("%s: %v", what, err)
	}
	if dec.More() {
		return malformed("%s: data after the JSON value", what)
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed("%s: data after the JSON value", what)
	}
	return nil
}

// DecodeReport reads and validates one report of at most MaxReportBytes.
func DecodeReport(r io.Reader) (Report, error) {
	var rep Report
	if err := decodeStrict(r, MaxReportBytes, "report", &rep); err != nil {
		return Report{}, fmt.Errorf("failure.DecodeReport: %w", err)
	}
	if err := rep.Validate(); err != nil {
		return Report{}, fmt.Errorf("failure.DecodeReport: %w", err)
	}
	return rep, nil
}

// DecodeBatch reads and validates a batch of at most MaxBatchBytes and
// MaxBatchReports reports. One bad report rejects the whole batch, naming
// its index, so nothing is half-accepted.
func DecodeBatch(r io.Reader) (Batch, error) {
	var b Batch
	if err := decodeStrict(r, MaxBatchBytes, "batch", &b); err != nil {
		return Batch{}, fmt.Errorf("failure.DecodeBatch: %w", err)
	}
	if len(b.Reports) == 0 {
		return Batch{}, fmt.Errorf("failure.DecodeBatch: %w", malformed("batch holds no reports"))
	}
	if len(b.Reports) > MaxBatchReports {
		return Batch{}, fmt.Errorf("failure.DecodeBatch: %w", public.Errorf(public.TooLarge, "%w: %d reports, at most %d", ErrTooLarge, len(b.Reports), MaxBatchReports))
	}
	seen := make(map[string]bool, len(b.Reports))
	for i := range b.Reports {
		if err := b.Reports[i].Validate(); err != nil {
			return Batch{}, fmt.Errorf("failure.DecodeBatch: %w", public.Errorf(public.KindOf(err), "report %d: %w", i, err))
		}
		if seen[b.Reports[i].ID] {
			return Batch{}, fmt.Errorf("failure.DecodeBatch: %w", public.Errorf(public.Invalid, "report %d: %w", i, malformed("duplicate id %q", b.Reports[i].ID)))
		}
		seen[b.Reports[i].ID] = true
	}
	return b, nil
}

func checkText(field, v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return malformed("%s is required", field)
	}
	if len(v) > max {
		return public.Errorf(public.TooLarge, "%w: %s is %d bytes, at most %d", ErrTooLarge, field, len(v), max)
	}
	if !utf8.ValidString(v) {
		return malformed("%s is not valid UTF-8", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) && r != '\t' {
			return malformed("%s holds a control character", field)
		}
	}
	return nil
}

func checkID(id string) error {
	if id == "" {
		return malformed("id is required")
	}
	if len(id) > MaxIDLen {
		return public.Errorf(public.TooLarge, "%w: id is %d bytes, at most %d", ErrTooLarge, len(id), MaxIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return malformed("id %q may hold only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// Validate checks a decoded report's fields against the limits.
func (r *Report) Validate() error {
	if err := checkID(r.ID); err != nil {
		return err
	}
	for _, f := range []struct {
		name     string
		v        string
		max      int
		required bool
	}{
		{"program", r.Program, MaxNameLen, true},
		{"component", r.Component, MaxNameLen, false},
		{"version", r.Version, MaxVersionLen, true},
		{"fault_type", r.FaultType, MaxNameLen, false},
	} {
		if err := checkText(f.name, f.v, f.max, f.required); err != nil {
			return err
		}
	}
	if r.Signal < 0 || r.Signal > MaxSignal {
		return malformed("signal %d is not in 0..%d", r.Signal, MaxSignal)
	}
	if r.ExitCode != nil && (*r.ExitCode < 0 || *r.ExitCode > MaxExitCode) {
		return malformed("exit_code %d is not in 0..%d", *r.ExitCode, MaxExitCode)
	}
	if len(r.Frames) > MaxFrames {
		return public.Errorf(public.TooLarge, "%w: %d frames, at most %d", ErrTooLarge, len(r.Frames), MaxFrames)
	}
	for i, fr := range r.Frames {
		if err := checkText(fmt.Sprintf("frame %d", i), fr, MaxFrameLen, false); err != nil {
			return err
		}
	}
	if len(r.GoPanic) > MaxPanicLen {
		return public.Errorf(public.TooLarge, "%w: go_panic is %d bytes, at most %d", ErrTooLarge, len(r.GoPanic), MaxPanicLen)
	}
	if !utf8.ValidString(r.GoPanic) {
		return malformed("go_panic is not valid UTF-8")
	}
	if r.FaultType == "" && r.Signal == 0 && r.ExitCode == nil && r.GoPanic == "" {
		return malformed("a fault_type, signal, exit_code or go_panic is required")
	}
	if r.Time.IsZero() {
		return malformed("time is required")
	}
	if y := r.Time.Year(); y < 2000 || y > 9999 {
		return malformed("time %s is out of range", r.Time.Format(time.RFC3339))
	}
	return nil
}

// signalNames maps Linux signal numbers to names.
var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
	8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
	14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP",
	20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
	26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}

// SignalName is the Linux name of a signal number ("SIGSEGV"), or "SIG<n>".
func SignalName(sig int) string {
	if sig > 0 && sig < len(signalNames) && signalNames[sig] != "" {
		return signalNames[sig]
	}
	return fmt.Sprintf("SIG%d", sig)
}

// SignalNumber parses "SIGSEGV", "SEGV" or "11" into a signal number.
func SignalNumber(s string) (int, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		return n, n > 0 && n <= MaxSignal
	}
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	for i, name := range signalNames {
		if name != "" && name == s {
			return i, true
		}
	}
	return 0, false
}
