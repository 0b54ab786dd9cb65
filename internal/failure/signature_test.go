package failure

import (
	"github.com/rampartsec/rampart/internal/deviceapi"

	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func rep(mod func(*deviceapi.CrashReport)) deviceapi.CrashReport {
	r := deviceapi.CrashReport{ID: "r1", Program: "/usr/bin/sensord", Component: "sensord", Version: "1.0.0", Signal: 11,
		Frames: []string{"#0  0x00007f1c2a3b4c5d in sensor_read (fd=3) at src/sensor.c:42", "#1  0x000055d0c0ffee00 in poll_loop () at src/main.c:88"},
		Time:   time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if mod != nil {
		mod(&r)
	}
	return r
}

func TestAnalyze(t *testing.T) {
	two := 2
	tests := []struct {
		name string
		r    deviceapi.CrashReport
		want Fault
	}{
		{"signal", rep(nil), Fault{Program: "sensord", Component: "sensord", FaultType: "SIGSEGV", Frames: []string{"sensor_read", "poll_loop"}}},
		{"explicit fault type wins", rep(func(r *deviceapi.CrashReport) { r.FaultType = " oom " }), Fault{Program: "sensord", Component: "sensord", FaultType: "oom", Frames: []string{"sensor_read", "poll_loop"}}},
		{"exit code", rep(func(r *deviceapi.CrashReport) { r.Signal, r.ExitCode, r.Frames = 0, &two, nil }), Fault{Program: "sensord", Component: "sensord", FaultType: "exit 2", Frames: []string{}}},
		{"go panic", rep(func(r *deviceapi.CrashReport) {
			r.Signal, r.Frames = 0, nil
			r.GoPanic = "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 17 [running]:\npanic({0x1?, 0x2?})\n\t/r/panic.go:1 +0x1\nmain.(*Router).route(0xc0000a6000)\n\t/b/router.go:42 +0x1d4\nmain.main()\n\t/b/main.go:10 +0x25\n"
		}), Fault{Program: "sensord", Component: "sensord", FaultType: "go panic: runtime error: index out of range [N] with length N",
			Frames: []string{"main.(*Router).route", "main.main"}, Message: "runtime error: index out of range [5] with length 3"}},
		{"unparsable go panic keeps frames", rep(func(r *deviceapi.CrashReport) { r.Signal, r.GoPanic = 0, "garbage" }), Fault{Program: "sensord", Component: "sensord", FaultType: "go panic", Frames: []string{"sensor_read", "poll_loop"}}},
		{"top frames only", rep(func(r *deviceapi.CrashReport) { r.Frames = strings.Split("a b c d e f g", " ") }), Fault{Program: "sensord", Component: "sensord", FaultType: "SIGSEGV", Frames: []string{"a", "b", "c", "d", "e"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(Analyze(tt.r), tt.want); diff != "" {
				t.Errorf("Analyze (-got +want):\n%s", diff)
			}
		})
	}
}

func TestSignature(t *testing.T) {
	base := Signature(rep(nil))
	if len(base) != 64 {
		t.Fatalf("signature %q is not hex SHA-256", base)
	}
	same := []struct {
		name string
		r    deviceapi.CrashReport
	}{
		{"other addresses and lines", rep(func(r *deviceapi.CrashReport) {
			r.Frames = []string{"#0  0x00005555aaaa0000 in sensor_read (fd=9) at src/sensor.c:47", "#1  0x0000555500001111 in poll_loop () at src/main.c:90"}
		})},
		{"other release", rep(func(r *deviceapi.CrashReport) { r.Version = "1.1.0" })},
		{"other install path", rep(func(r *deviceapi.CrashReport) { r.Program = "/opt/sensord" })},
		{"other time and id", rep(func(r *deviceapi.CrashReport) { r.ID, r.Time = "r2", r.Time.Add(time.Hour) })},
		{"same signal given by name", rep(func(r *deviceapi.CrashReport) { r.Signal, r.FaultType = 0, "SIGSEGV" })},
	}
	for _, tt := range same {
		if got := Signature(tt.r); got != base {
			t.Errorf("%s: signature changed", tt.name)
		}
	}
	deep := func(last string) deviceapi.CrashReport {
		return rep(func(r *deviceapi.CrashReport) { r.Frames = []string{"a", "b", "c", "d", "e", last} })
	}
	if Signature(deep("f")) != Signature(deep("g")) {
		t.Error("a frame below the top five changed the signature")
	}
	differ := []struct {
		name string
		r    deviceapi.CrashReport
	}{
		{"other program", rep(func(r *deviceapi.CrashReport) { r.Program = "modemd" })},
		{"other component", rep(func(r *deviceapi.CrashReport) { r.Component = "sensors" })},
		{"other signal", rep(func(r *deviceapi.CrashReport) { r.Signal = 6 })},
		{"other top frame", rep(func(r *deviceapi.CrashReport) { r.Frames[0] = "sensor_write" })},
		{"frame order", rep(func(r *deviceapi.CrashReport) { r.Frames[0], r.Frames[1] = r.Frames[1], r.Frames[0] })},
		{"frames merged", rep(func(r *deviceapi.CrashReport) { r.Frames = []string{"sensor_readpoll_loop"} })},
	}
	seen := map[string]string{base: "base"}
	for _, tt := range differ {
		got := Signature(tt.r)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: same signature as %s", tt.name, prev)
		}
		seen[got] = tt.name
	}
}

func BenchmarkSignatureGoPanic(b *testing.B) {
	r := rep(func(r *deviceapi.CrashReport) {
		r.Signal, r.Frames = 0, nil
		r.GoPanic = "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 17 [running]:\nmain.(*Router).route(0xc0000a6000, {0xc0000b4000, 0x3, 0x8})\n\t/build/router.go:42 +0x1d4\nmain.(*Server).handle(...)\n\t/build/server.go:17\nmain.main()\n\t/build/main.go:10 +0x25\n"
	})
	b.ReportAllocs()
	for b.Loop() {
		Signature(r)
	}
}
