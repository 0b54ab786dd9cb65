package deviceapi

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeReportSeeds(t *testing.T) {
	two, one := 2, 1
	want := map[string]CrashReport{
		"segv.json": {ID: "r-0001", Program: "/usr/bin/sensord", Component: "sensord", Version: "1.4.2", Signal: 11, Frames: []string{
			"#0  0x00007f1c2a3b4c5d in sensor_read (fd=3, buf=0x0) at src/sensor.c:42",
			"#1  0x000055d0c0ffee00 in poll_loop () at src/main.c:88",
			"#2  0x00007f1c2a229d90 in __libc_start_call_main () from /lib/x86_64-linux-gnu/libc.so.6",
		}, Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		"exit.json": {ID: "r-0004", Program: "updater-hook", Version: "3", ExitCode: &one, Time: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
	}
	files, err := filepath.Glob("testdata/crash/reports/*.json")
	if err != nil || len(files) < 5 {
		t.Fatalf("seed reports: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeCrashReport(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("DecodeReport: %v", err)
			}
			if w, ok := want[filepath.Base(f)]; ok {
				if diff := cmp.Diff(got, w); diff != "" {
					t.Errorf("report (-got +want):\n%s", diff)
				}
			}
			if filepath.Base(f) == "gopanic.json" && (got.ExitCode == nil || *got.ExitCode != two) {
				t.Errorf("exit code %v, want 2", got.ExitCode)
			}
		})
	}
}

func TestDecodeReportRejects(t *testing.T) {
	valid := `"id":"r1","program":"p","version":"1","signal":11,"time":"2026-03-01T12:00:00Z"`
	tests := []struct {
		name    string
		body    string
		wantErr error
		msg     string
	}{
		{"empty", ``, ErrCrashMalformed, "EOF"},
		{"not json", `crash!`, ErrCrashMalformed, "invalid character"},
		{"unknown field", `{` + valid + `,"core":"AAAA"}`, ErrCrashMalformed, `unknown field "core"`},
		{"trailing data", `{` + valid + `} {}`, ErrCrashMalformed, "data after the JSON value"},
		{"trailing garbage", `{` + valid + `}x`, ErrCrashMalformed, "data after the JSON value"},
		{"array", `[{` + valid + `}]`, ErrCrashMalformed, "cannot unmarshal array"},
		{"oversized", `{` + valid + `,"go_panic":"` + strings.Repeat("a", MaxCrashReportBytes) + `"}`, ErrCrashTooLarge, "report is over 65536 bytes"},
		{"no id", `{"program":"p","version":"1","signal":11,"time":"2026-03-01T12:00:00Z"}`, ErrCrashMalformed, "id is required"},
		{"bad id", `{"id":"../x","program":"p","version":"1","signal":11,"time":"2026-03-01T12:00:00Z"}`, ErrCrashMalformed, "may hold only letters"},
		{"long id", `{"id":"` + strings.Repeat("a", 65) + `","program":"p","version":"1","signal":11,"time":"2026-03-01T12:00:00Z"}`, ErrCrashTooLarge, "id is 65 bytes"},
		{"no program", `{"id":"r","version":"1","signal":11,"time":"2026-03-01T12:00:00Z"}`, ErrCrashMalformed, "program is required"},
		{"blank program", `{"id":"r","program":"  ","version":"1","signal":11,"time":"2026-03-01T12:00:00Z"}`, ErrCrashMalformed, "program is required"},
		{"no version", `{"id":"r","program":"p","signal":11,"time":"2026-03-01T12:00:00Z"}`, ErrCrashMalformed, "version is required"},
		{"long version", `{"id":"r","program":"p","version":"` + strings.Repeat("1", 65) + `","signal":11,"time":"2026-03-01T12:00:00Z"}`, ErrCrashTooLarge, "version is 65 bytes"},
		{"control char", `{"id":"r","program":"p\u0007","version":"1","signal":11,"time":"2026-03-01T12:00:00Z"}`, ErrCrashMalformed, "program holds a control character"},
		{"no fault", `{"id":"r","program":"p","version":"1","time":"2026-03-01T12:00:00Z"}`, ErrCrashMalformed, "a fault_type, signal, exit_code or go_panic is required"},
		{"signal range", `{"id":"r","program":"p","version":"1","signal":99,"time":"2026-03-01T12:00:00Z"}`, ErrCrashMalformed, "signal 99 is not in 0..64"},
		{"negative signal", `{"id":"r","program":"p","version":"1","signal":-1,"time":"2026-03-01T12:00:00Z"}`, ErrCrashMalformed, "signal -1"},
		{"exit code range", `{"id":"r","program":"p","version":"1","exit_code":256,"time":"2026-03-01T12:00:00Z"}`, ErrCrashMalformed, "exit_code 256"},
		{"no time", `{"id":"r","program":"p","version":"1","signal":11}`, ErrCrashMalformed, "time is required"},
		{"ancient time", `{"id":"r","program":"p","version":"1","signal":11,"time":"1970-01-01T00:00:00Z"}`, ErrCrashMalformed, "time 1970-01-01T00:00:00Z is out of range"},
		{"bad time", `{"id":"r","program":"p","version":"1","signal":11,"time":"yesterday"}`, ErrCrashMalformed, "cannot parse"},
		{"too many frames", `{` + valid + `,"frames":[` + strings.Repeat(`"f",`, MaxFrames) + `"f"]}`, ErrCrashTooLarge, "129 frames, at most 128"},
		{"long frame", `{` + valid + `,"frames":["` + strings.Repeat("f", MaxFrameLen+1) + `"]}`, ErrCrashTooLarge, "frame 0 is 513 bytes"},
		{"frame wrong type", `{` + valid + `,"frames":[1]}`, ErrCrashMalformed, "cannot unmarshal number"},
		{"signal wrong type", `{"id":"r","program":"p","version":"1","signal":"SEGV","time":"2026-03-01T12:00:00Z"}`, ErrCrashMalformed, "cannot unmarshal string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCrashReport(strings.NewReader(tt.body))
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("DecodeReport error = %v, want %v containing %q", err, tt.wantErr, tt.msg)
			}
		})
	}
}

func TestDecodeBatch(t *testing.T) {
	b, err := os.ReadFile("testdata/crash/batch.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCrashBatch(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Reports) != 2 || got.Reports[1].Frames[0] != "sensor_read" {
		t.Errorf("batch = %+v", got)
	}
	rep := `{"id":"ID","program":"p","version":"1","signal":11,"time":"2026-03-01T12:00:00Z"}`
	many := make([]string, MaxCrashBatchReports+1)
	for i := range many {
		many[i] = strings.Replace(rep, "ID", "r"+strings.Repeat("x", i%50)+string(rune('a'+i%26)), 1)
	}
	tests := []struct {
		name    string
		body    string
		wantErr error
		msg     string
	}{
		{"empty batch", `{"reports":[]}`, ErrCrashMalformed, "batch holds no reports"},
		{"null batch", `{}`, ErrCrashMalformed, "batch holds no reports"},
		{"too many", `{"reports":[` + strings.Join(many, ",") + `]}`, ErrCrashTooLarge, "101 reports, at most 100"},
		{"oversized", `{"reports":[` + rep + `],"x":"` + strings.Repeat("a", MaxCrashBatchBytes) + `"}`, ErrCrashTooLarge, "batch is over 1048576 bytes"},
		{"bad report", `{"reports":[` + rep + `,{"id":"y","program":"p","time":"2026-03-01T12:00:00Z","signal":1}]}`, ErrCrashMalformed, "report 1: malformed crash report: version is required"},
		{"duplicate id", `{"reports":[` + rep + `,` + rep + `]}`, ErrCrashMalformed, `report 1: malformed crash report: duplicate id "ID"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCrashBatch(strings.NewReader(tt.body))
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("DecodeBatch error = %v, want %v containing %q", err, tt.wantErr, tt.msg)
			}
		})
	}
}

func TestSignalNames(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{{"SIGSEGV", 11, true}, {"segv", 11, true}, {"6", 6, true}, {"SIGNOPE", 0, false}, {"99", 99, false}, {"", 0, false}} {
		got, ok := SignalNumber(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("SignalNumber(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if got := SignalName(11); got != "SIGSEGV" {
		t.Errorf("SignalName(11) = %q", got)
	}
	if got := SignalName(40); got != "SIG40" {
		t.Errorf("SignalName(40) = %q", got)
	}
}
