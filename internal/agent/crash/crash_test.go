package crash

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/failure"

	"github.com/rampartsec/rampart/internal/testenv"
)

// fakeServer is an in-process Uploader that records what it acknowledged
// and can be told to fail.
type fakeServer struct {
	mu      sync.Mutex
	batches []deviceapi.CrashBatch
	fail    error
}

func (s *fakeServer) Upload(_ context.Context, b deviceapi.CrashBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.batches = append(s.batches, b)
	return nil
}

func (s *fakeServer) reports() []deviceapi.CrashReport {
	var out []deviceapi.CrashReport
	for _, b := range s.batches {
		out = append(out, b.Reports...)
	}
	return out
}

func newCollector(t *testing.T, mod func(*Config)) (*Collector, Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{SpoolDir: filepath.Join(dir, "spool"), OutboxDir: filepath.Join(dir, "outbox")}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, cfg
}

func copySeed(t *testing.T, spool, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/spool", name))
	if err != nil {
		t.Fatal(err)
	}
	writeSpool(t, spool, name, string(b))
}

var mtime = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// writeSpool writes a crash file with increasing modification times so the
// order of collection is known.
func writeSpool(t *testing.T, spool, name, content string) {
	t.Helper()
	p := filepath.Join(spool, name)
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	mtime = mtime.Add(time.Second)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestCollectAndFlushSeeds(t *testing.T) {
	c, cfg := newCollector(t, func(c *Config) {
		c.Describe = func(program string) (string, string) {
			if program == "/usr/bin/sensord" {
				return "sensord", "1.4.2"
			}
			return "", ""
		}
	})
	for _, n := range []string{"sensord-segv.json", "gatewayd-panic.json", "sensord.coredump"} {
		copySeed(t, cfg.SpoolDir, n)
	}
	st, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, Stats{Files: 3, Reports: 4}); diff != "" {
		t.Errorf("collect stats (-got +want):\n%s", diff)
	}
	if got := dirNames(t, cfg.SpoolDir); len(got) != 0 {
		t.Errorf("spool still holds %v", got)
	}
	srv := &fakeServer{}
	fst, err := c.Flush(context.Background(), srv)
	if err != nil {
		t.Fatal(err)
	}
	if fst.Uploaded != 1 || fst.UploadedReports != 4 {
		t.Errorf("flush stats %+v", fst)
	}
	got := srv.reports()
	if len(got) != 4 {
		t.Fatalf("server got %d reports", len(got))
	}
	for i := range got {
		if !strings.HasPrefix(got[i].ID, "c-") || len(got[i].ID) != 34 {
			t.Errorf("report %d id %q is not derived", i, got[i].ID)
		}
		got[i].ID = ""
	}
	two := 2
	want := []deviceapi.CrashReport{
		{Program: "/usr/bin/sensord", Component: "sensord", Version: "1.4.2", Signal: 11,
			Frames: []string{"sensor_read+0x1a", "poll_loop+0x40", "main+0x10"}, Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		{Program: "/usr/bin/gatewayd", Component: "gateway", Version: "2.0.0", ExitCode: &two,
			GoPanic: "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 17 [running]:\nmain.(*Router).route(0xc0000a6000, {0xc0000b4000, 0x3, 0x8})\n\t/build/router.go:42 +0x1d4\nmain.main()\n\t/build/main.go:10 +0x25\n",
			Time:    time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)},
		{Program: "/usr/bin/sensord", Component: "sensord", Version: "1.4.2", Signal: 6, Frames: []string{
			"#0  0x00007f3c8a2e5e2c __pthread_kill_implementation (libc.so.6 + 0x8ee2c)",
			"#1  0x00007f3c8a291fb2 raise (libc.so.6 + 0x3afb2)",
			"#2  0x00007f3c8a27c472 abort (libc.so.6 + 0x25472)",
			"#3  0x000055d0c0ff1234 sensor_read (sensord + 0x1234)",
			"#4  0x000055d0c0ff2000 n/a (sensord + 0x2000)",
		}, Time: time.UnixMicro(1772366399123456).UTC()},
		{Program: "modemd", Component: "modem", Version: "0.9.1", Signal: 11, Time: time.UnixMicro(1772366500000000).UTC()},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("uploaded reports (-got +want):\n%s", diff)
	}
	if f := failure.Analyze(got[2]); !cmp.Equal(f.Frames, []string{"sensor_read", "sensord+0x2000"}) {
		t.Errorf("coredump frames normalise to %v", f.Frames)
	}
	if got := dirNames(t, cfg.OutboxDir); len(got) != 0 {
		t.Errorf("outbox still holds %v after acknowledgement", got)
	}
}

func TestOutboxSurvivesRestartAndUploadFailures(t *testing.T) {
	c, cfg := newCollector(t, nil)
	copySeed(t, cfg.SpoolDir, "gatewayd-panic.json")
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	down := &fakeServer{fail: errors.New("connection refused")}
	if _, err := c.Flush(context.Background(), down); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("flush against a down server: %v", err)
	}
	// The agent restarts: a new collector over the same folders.
	c2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b, r, err := c2.Pending(); err != nil || b != 1 || r != 1 {
		t.Fatalf("pending after restart = %d batches %d reports (%v), want 1 1", b, r, err)
	}
	// The spool file comes back, as if the agent died between writing the
	// batch and removing the file: it is recognised, not queued twice.
	copySeed(t, cfg.SpoolDir, "gatewayd-panic.json")
	st, err := c2.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Duplicates != 1 || st.Reports != 0 {
		t.Errorf("recollect stats %+v, want one duplicate", st)
	}
	up := &fakeServer{}
	if _, err := c2.Flush(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	if len(up.reports()) != 1 {
		t.Errorf("server got %d reports, want exactly 1", len(up.reports()))
	}
}

func TestFlushDropsRejectedBatchesAndContinues(t *testing.T) {
	c, cfg := newCollector(t, nil)
	for i := range 150 {
		writeSpool(t, cfg.SpoolDir, fmt.Sprintf("c%03d.json", i), fmt.Sprintf(`{"program":"p%d","version":"1","signal":11}`, i))
	}
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls := 0
	u := UploaderFunc(func(_ context.Context, b deviceapi.CrashBatch) error {
		calls++
		if calls == 1 {
			return fmt.Errorf("server said 400: %w", ErrRejected)
		}
		return nil
	})
	st, err := c.Flush(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	if st.DroppedBatches != 1 || st.Uploaded != 1 || st.UploadedReports != 50 {
		t.Errorf("flush stats %+v, want one dropped batch of 100 and one uploaded of 50", st)
	}
	if b, _, _ := c.Pending(); b != 0 {
		t.Errorf("%d batches left", b)
	}
}

func TestBatchCaps(t *testing.T) {
	c, cfg := newCollector(t, nil)
	for i := range 250 {
		writeSpool(t, cfg.SpoolDir, fmt.Sprintf("c%03d.json", i), fmt.Sprintf(`{"program":"p","version":"1","signal":11,"time":"2026-03-01T00:00:%02dZ","id":"n%d"}`, i%60, i))
	}
	// Reports near the per-report limit: a batch holds at most ~16 of them.
	big := strings.Repeat("x", 60<<10)
	for i := range 40 {
		writeSpool(t, cfg.SpoolDir, fmt.Sprintf("d%03d.json", i), fmt.Sprintf(`{"program":"p%d","version":"1","go_panic":"%s","fault_type":"x"}`, i, big[:deviceapi.MaxPanicLen-10]))
	}
	st, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Reports != 290 {
		t.Fatalf("queued %d reports, want 290", st.Reports)
	}
	srv := &fakeServer{}
	if _, err := c.Flush(context.Background(), srv); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, b := range srv.batches {
		if len(b.Reports) > deviceapi.MaxCrashBatchReports {
			t.Errorf("batch %d holds %d reports", i, len(b.Reports))
		}
		raw, _ := jsonSize(b)
		if raw > deviceapi.MaxCrashBatchBytes {
			t.Errorf("batch %d is %d bytes", i, raw)
		}
		total += len(b.Reports)
	}
	if total != 290 || len(srv.batches) < 4 {
		t.Errorf("%d reports in %d batches", total, len(srv.batches))
	}
	// Order is kept: the first batch starts with the oldest file.
	if srv.batches[0].Reports[0].ID != "n0" {
		t.Errorf("first report %q, want n0", srv.batches[0].Reports[0].ID)
	}
}

func TestRejectsBadFilesAndKeepsGoodOnes(t *testing.T) {
	c, cfg := newCollector(t, func(c *Config) { c.MaxFileBytes = 4096 })
	bad := map[string]string{
		"a-malformed.json":     `{"program":`,
		"b-unknown.json":       `{"program":"p","version":"1","signal":11,"core":"AAAA"}`,
		"c-noprogram.json":     `{"version":"1","signal":11}`,
		"d-nofault.json":       `{"program":"p","version":"1"}`,
		"e-badtime.json":       `{"program":"p","version":"1","signal":11,"time":"yesterday"}`,
		"f-oversized.json":     `{"program":"p","version":"1","signal":11,"fault_type":"` + strings.Repeat("x", 5000) + `"}`,
		"g-unknown.txt":        `segfault`,
		"h-trailing.json":      `{"program":"p","version":"1","signal":11} {}`,
		"i-truncated.coredump": "MESSAGE\n\x10\x00\x00",
		"j-nocomm.coredump":    "MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1\nCOREDUMP_SIGNAL=11\nCOREDUMP_TIMESTAMP=1\n",
	}
	for n, b := range bad {
		writeSpool(t, cfg.SpoolDir, n, b)
	}
	copySeed(t, cfg.SpoolDir, "sensord-segv.json")
	writeSpool(t, cfg.SpoolDir, ".in-progress", `{"program":`)
	writeSpool(t, cfg.SpoolDir, "writing.json.tmp", `{"program":`)
	writeSpool(t, cfg.SpoolDir, "k-not-a-crash.journal", "MESSAGE=hello\n_PID=1\n")
	st, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, Stats{Files: 12, Reports: 1, Ignored: 1, Rejected: 10}); diff != "" {
		t.Errorf("stats (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(dirNames(t, cfg.SpoolDir), []string{".in-progress", "writing.json.tmp"}); diff != "" {
		t.Errorf("spool left (-got +want):\n%s", diff)
	}
}

func TestClipsLongReports(t *testing.T) {
	c, cfg := newCollector(t, nil)
	frames := make([]string, deviceapi.MaxFrames+20)
	for i := range frames {
		frames[i] = fmt.Sprintf(`"%s"`, strings.Repeat("é", deviceapi.MaxFrameLen))
	}
	writeSpool(t, cfg.SpoolDir, "long.json", `{"program":"p","version":"`+strings.Repeat("9", 100)+`","signal":11,"frames":[`+strings.Join(frames, ",")+`]}`)
	if st, err := c.Collect(context.Background()); err != nil || st.Reports != 1 {
		t.Fatalf("collect: %+v %v", st, err)
	}
	srv := &fakeServer{}
	if _, err := c.Flush(context.Background(), srv); err != nil {
		t.Fatal(err)
	}
	r := srv.reports()[0]
	if len(r.Frames) != deviceapi.MaxFrames || len(r.Frames[0]) > deviceapi.MaxFrameLen || len(r.Version) != deviceapi.MaxVersionLen {
		t.Errorf("report not clipped: %d frames, frame %d bytes, version %d bytes", len(r.Frames), len(r.Frames[0]), len(r.Version))
	}
	if err := r.Validate(); err != nil {
		t.Errorf("clipped report invalid: %v", err)
	}
}

func TestSpoolAndOutboxCaps(t *testing.T) {
	c, cfg := newCollector(t, func(c *Config) { c.MaxSpoolBytes = 2000; c.MaxOutboxBytes = 3000 })
	for i := range 40 {
		writeSpool(t, cfg.SpoolDir, fmt.Sprintf("c%03d.json", i), fmt.Sprintf(`{"id":"k%03d","program":"p","version":"1","signal":11,"time":"2026-03-01T00:00:00Z"}`, i))
	}
	st, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.DroppedFiles == 0 || st.Reports+st.DroppedFiles != 40 {
		t.Fatalf("stats %+v: want the oldest files dropped over the spool cap", st)
	}
	srv := &fakeServer{}
	if _, err := c.Flush(context.Background(), srv); err != nil {
		t.Fatal(err)
	}
	if got := srv.reports(); got[len(got)-1].ID != "k039" {
		t.Errorf("newest crash %q lost, want k039 kept", got[len(got)-1].ID)
	}
	// With the server down, batches pile up until the outbox cap drops the oldest.
	dropped := 0
	for round := range 10 {
		for i := range 10 {
			writeSpool(t, cfg.SpoolDir, fmt.Sprintf("r%d-%d.json", round, i), fmt.Sprintf(`{"id":"r%d-%d","program":"p","version":"1","signal":11,"time":"2026-03-01T00:00:00Z"}`, round, i))
		}
		st, err := c.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		dropped += st.DroppedBatches
	}
	var size int64
	for _, n := range dirNames(t, cfg.OutboxDir) {
		fi, _ := os.Stat(filepath.Join(cfg.OutboxDir, n))
		size += fi.Size()
	}
	if dropped == 0 || size > cfg.MaxOutboxBytes {
		t.Errorf("dropped %d batches, outbox %d bytes over a %d cap", dropped, size, cfg.MaxOutboxBytes)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []Config{{}, {SpoolDir: dir}, {SpoolDir: dir, OutboxDir: dir + "/"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestCollectHonoursCancellation(t *testing.T) {
	c, cfg := newCollector(t, nil)
	copySeed(t, cfg.SpoolDir, "sensord-segv.json")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Collect(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Collect on a cancelled context: %v", err)
	}
	if got := dirNames(t, cfg.SpoolDir); len(got) != 1 {
		t.Errorf("cancelled collect consumed the spool: %v", got)
	}
}

// TestDependencies guards the agent's footprint: no database, web server
// or server-side package may creep in.
func TestDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go command", "install Go and put it on PATH to list the agent's dependencies")
	}
	cmd := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{"database/sql", "net/http", "html/template", "modernc.org/", "github.com/jackc/",
		"github.com/rampartsec/rampart/internal/store", "github.com/rampartsec/rampart/internal/api",
		"github.com/rampartsec/rampart/internal/server", "github.com/rampartsec/rampart/internal/rollout", "runtime/cgo"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("agent crash collector depends on %s", dep)
			}
		}
	}
}
