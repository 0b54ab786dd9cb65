package deviceapi

import (
	"bytes"
	"encoding/json"
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
	MaxCrashReportBytes  = 64 << 10 // one encoded report
	MaxCrashBatchBytes   = 1 << 20  // one encoded batch
	MaxCrashBatchReports = 100
	MaxFrames            = 128
	MaxFrameLen          = 512
	MaxNameLen           = 256 // program, component, fault type
	MaxVersionLen        = 64
	MaxIDLen             = 64
	MaxPanicLen          = 32 << 10
	MaxSignal            = 64
	MaxExitCode          = 255
)

// Errors wrapped by every crash report decoding and validation failure.
// They name what was refused; errors.Is also matches them against
// ErrTooLarge and ErrMalformed, so the edge answers 413 or 400 for any
// device message the same way.
var (
	ErrCrashTooLarge  error = &kindError{text: "crash report too large", kind: ErrTooLarge}
	ErrCrashMalformed error = &kindError{text: "malformed crash report", kind: ErrMalformed}
)

// CrashReport is one crash, as written to the agent's spool and uploaded.
type CrashReport struct {
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

// CrashBatch is what the agent uploads in one request.
type CrashBatch struct {
	Reports []CrashReport `json:"reports"`
}

// crashMalformed and the ErrCrashTooLarge errors carry their whole text as the public sentence: it
// describes only the device's own input.
func crashMalformed(format string, args ...any) error {
	return public.Errorf(public.Invalid, "%w: %s", ErrCrashMalformed, fmt.Sprintf(format, args...))
}

// decodeStrict reads one JSON value of at most limit bytes into v, refusing
// unknown fields and trailing data.
func decodeCrash(r io.Reader, limit int64, what string, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(b)) > limit {
		return public.Errorf(public.TooLarge, "%w: %s is over %d bytes", ErrCrashTooLarge, what, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return crashMalformed("%s: %v", what, err)
	}
	if dec.More() {
		return crashMalformed("%s: data after the JSON value", what)
	}
	if _, err := dec.Token(); err != io.EOF {
		return crashMalformed("%s: data after the JSON value", what)
	}
	return nil
}

// DecodeCrashReport reads and validates one report of at most MaxCrashReportBytes.
func DecodeCrashReport(r io.Reader) (CrashReport, error) {
	var rep CrashReport
	if err := decodeCrash(r, MaxCrashReportBytes, "report", &rep); err != nil {
		return CrashReport{}, fmt.Errorf("deviceapi.DecodeCrashReport: %w", err)
	}
	if err := rep.Validate(); err != nil {
		return CrashReport{}, fmt.Errorf("deviceapi.DecodeCrashReport: %w", err)
	}
	return rep, nil
}

// DecodeCrashBatch reads and validates a batch of at most MaxCrashBatchBytes and
// MaxCrashBatchReports reports. One bad report rejects the whole batch, naming
// its index, so nothing is half-accepted.
func DecodeCrashBatch(r io.Reader) (CrashBatch, error) {
	var b CrashBatch
	if err := decodeCrash(r, MaxCrashBatchBytes, "batch", &b); err != nil {
		return CrashBatch{}, fmt.Errorf("deviceapi.DecodeCrashBatch: %w", err)
	}
	if len(b.Reports) == 0 {
		return CrashBatch{}, fmt.Errorf("deviceapi.DecodeCrashBatch: %w", crashMalformed("batch holds no reports"))
	}
	if len(b.Reports) > MaxCrashBatchReports {
		return CrashBatch{}, fmt.Errorf("deviceapi.DecodeCrashBatch: %w", public.Errorf(public.TooLarge, "%w: %d reports, at most %d", ErrCrashTooLarge, len(b.Reports), MaxCrashBatchReports))
	}
	seen := make(map[string]bool, len(b.Reports))
	for i := range b.Reports {
		if err := b.Reports[i].Validate(); err != nil {
			return CrashBatch{}, fmt.Errorf("deviceapi.DecodeCrashBatch: %w", public.Errorf(public.KindOf(err), "report %d: %w", i, err))
		}
		if seen[b.Reports[i].ID] {
			return CrashBatch{}, fmt.Errorf("deviceapi.DecodeCrashBatch: %w", public.Errorf(public.Invalid, "report %d: %w", i, crashMalformed("duplicate id %q", b.Reports[i].ID)))
		}
		seen[b.Reports[i].ID] = true
	}
	return b, nil
}

func checkText(field, v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return crashMalformed("%s is required", field)
	}
	if len(v) > max {
		return public.Errorf(public.TooLarge, "%w: %s is %d bytes, at most %d", ErrCrashTooLarge, field, len(v), max)
	}
	if !utf8.ValidString(v) {
		return crashMalformed("%s is not valid UTF-8", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) && r != '\t' {
			return crashMalformed("%s holds a control character", field)
		}
	}
	return nil
}

func checkID(id string) error {
	if id == "" {
		return crashMalformed("id is required")
	}
	if len(id) > MaxIDLen {
		return public.Errorf(public.TooLarge, "%w: id is %d bytes, at most %d", ErrCrashTooLarge, len(id), MaxIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return crashMalformed("id %q may hold only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// Validate checks a decoded report's fields against the limits.
func (r *CrashReport) Validate() error {
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
		return crashMalformed("signal %d is not in 0..%d", r.Signal, MaxSignal)
	}
	if r.ExitCode != nil && (*r.ExitCode < 0 || *r.ExitCode > MaxExitCode) {
		return crashMalformed("exit_code %d is not in 0..%d", *r.ExitCode, MaxExitCode)
	}
	if len(r.Frames) > MaxFrames {
		return public.Errorf(public.TooLarge, "%w: %d frames, at most %d", ErrCrashTooLarge, len(r.Frames), MaxFrames)
	}
	for i, fr := range r.Frames {
		if err := checkText(fmt.Sprintf("frame %d", i), fr, MaxFrameLen, false); err != nil {
			return err
		}
	}
	if len(r.GoPanic) > MaxPanicLen {
		return public.Errorf(public.TooLarge, "%w: go_panic is %d bytes, at most %d", ErrCrashTooLarge, len(r.GoPanic), MaxPanicLen)
	}
	if !utf8.ValidString(r.GoPanic) {
		return crashMalformed("go_panic is not valid UTF-8")
	}
	if r.FaultType == "" && r.Signal == 0 && r.ExitCode == nil && r.GoPanic == "" {
		return crashMalformed("a fault_type, signal, exit_code or go_panic is required")
	}
	if r.Time.IsZero() {
		return crashMalformed("time is required")
	}
	if y := r.Time.Year(); y < 2000 || y > 9999 {
		return crashMalformed("time %s is out of range", r.Time.Format(time.RFC3339))
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
