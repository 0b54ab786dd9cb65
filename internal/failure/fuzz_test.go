package failure

import (
	"github.com/rampartsec/rampart/internal/deviceapi"

	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds at %s: %v", pattern, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecodeReport checks that any input either decodes into a report that
// passes validation, re-encodes and decodes to the same signature, or fails
// with one of the two sentinel errors; and that analysing a decoded report
// never panics.
func FuzzDecodeReport(f *testing.F) {
	addSeeds(f, "../deviceapi/testdata/crash/reports/*.json")
	f.Add([]byte(`{"id":"x","program":"p","version":"1","go_panic":"panic: \ngoroutine 1 [running]:\n(((\n","time":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := deviceapi.DecodeCrashReport(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, deviceapi.ErrCrashMalformed) && !errors.Is(err, deviceapi.ErrCrashTooLarge) {
				t.Fatalf("error %v wraps neither deviceapi.ErrCrashMalformed nor deviceapi.ErrCrashTooLarge", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded report fails validation: %v", err)
		}
		sig := Signature(r)
		if len(sig) != 64 {
			t.Fatalf("signature %q is not 64 hex digits", sig)
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := deviceapi.DecodeCrashReport(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-encoded report does not decode: %v", err)
		}
		if Signature(r2) != sig {
			t.Fatalf("signature changed across a JSON round trip")
		}
	})
}

// FuzzDecodeBatch checks the batch decoder the same way.
func FuzzDecodeBatch(f *testing.F) {
	addSeeds(f, "../deviceapi/testdata/crash/batch.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		batch, err := deviceapi.DecodeCrashBatch(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, deviceapi.ErrCrashMalformed) && !errors.Is(err, deviceapi.ErrCrashTooLarge) {
				t.Fatalf("error %v wraps neither deviceapi.ErrCrashMalformed nor deviceapi.ErrCrashTooLarge", err)
			}
			return
		}
		if len(batch.Reports) == 0 || len(batch.Reports) > deviceapi.MaxCrashBatchReports {
			t.Fatalf("accepted a batch of %d reports", len(batch.Reports))
		}
		for _, r := range batch.Reports {
			Analyze(r)
		}
	})
}

// FuzzParseGoPanic checks that panic parsing and frame normalisation never
// panic and never return frames with line breaks.
func FuzzParseGoPanic(f *testing.F) {
	f.Add("panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/x.go:1 +0x1\n")
	f.Add("fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\nmain.main()\n")
	f.Add("#0  0x0 in f (a=1) at x.c:1")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseGoPanic(s)
		if err != nil && !errors.Is(err, deviceapi.ErrCrashMalformed) {
			t.Fatalf("error %v does not wrap deviceapi.ErrCrashMalformed", err)
		}
		for _, fr := range NormalizeFrames(append(p.Frames, s)) {
			if bytes.ContainsAny([]byte(fr), "\n\r") {
				t.Fatalf("normalised frame %q holds a line break", fr)
			}
		}
	})
}
