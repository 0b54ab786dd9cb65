package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/testenv"
	"github.com/rampartsec/rampart/internal/tuf"
)

// twoReleases signs 1.0.0 and 1.1.0: rootfs changes (with a delta), config
// keeps the same image.
func twoReleases(w *world) (release, release) {
	rootfs := image(1, 256<<10)
	cfg := image(2, 4<<10)
	r1 := w.addRelease("1.0.0", 1, map[string][]byte{"rootfs": rootfs, "config": cfg}, nil)
	r2 := w.addRelease("1.1.0", 1, map[string][]byte{"rootfs": edit(rootfs, 7), "config": cfg}, map[string]string{"config": "1.0.0"})
	return r1, r2
}

func TestInstallDeltaAndRefuseRollback(t *testing.T) {
	w := newWorld(t)
	r1, r2 := twoReleases(w)
	d := newDevice(t)
	ctx := context.Background()

	w.assign(r1)
	out, err := w.updater(t, d, nil).RunOnce(ctx)
	if err != nil {
		t.Fatalf("install 1.0.0: %v", err)
	}
	if diff := cmp.Diff(out, Outcome{Release: "1.0.0", Installed: true, Committed: true}); diff != "" {
		t.Errorf("outcome (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(d.reports.states(), []InstallState{StateDownloading, StateInstalling, StateInstalled, StateCommitted}); diff != "" {
		t.Errorf("reported states (-got +want):\n%s", diff)
	}

	d.reports.reset()
	w.assign(r2)
	out, err = w.updater(t, d, nil).RunOnce(ctx)
	if err != nil {
		t.Fatalf("install 1.1.0: %v", err)
	}
	if diff := cmp.Diff(out, Outcome{Release: "1.1.0", Installed: true, Committed: true, Delta: []string{"rootfs"}}); diff != "" {
		t.Errorf("outcome (-got +want):\n%s", diff)
	}
	for _, req := range w.log() {
		if strings.Contains(req, tuf.ImagePath(r2.images["rootfs"].SHA256)) {
			t.Errorf("full image downloaded although a delta was available: %s", req)
		}
	}

	// Nothing new: a second run does nothing.
	d.reports.reset()
	out, err = w.updater(t, d, nil).RunOnce(ctx)
	if err != nil || out.Installed {
		t.Fatalf("idle run: %+v, %v", out, err)
	}

	// Pushing 1.0.0 back is refused, and the device stays on 1.1.0.
	w.assign(r1)
	_, err = w.updater(t, d, nil).RunOnce(ctx)
	if !errors.Is(err, ErrRollback) {
		t.Fatalf("push back 1.0.0: %v, want ErrRollback", err)
	}
	if got := committedRelease(t, d); got != "1.1.0" {
		t.Errorf("committed release = %q, want 1.1.0", got)
	}
	if s := d.reports.states(); len(s) == 0 || s[len(s)-1] != StateFailed {
		t.Errorf("reported states %v, want a final failed", s)
	}
	// The reason an operator reads in deployment show says what was refused, with no Go names.
	d.reports.mu.Lock()
	reason := d.reports.s[len(d.reports.s)-1].Reason
	d.reports.mu.Unlock()
	if !strings.HasPrefix(reason, "refusing to install an older release: rootfs 1.0.0 is not newer than the committed 1.1.0") || strings.Contains(reason, "update") {
		t.Errorf("reported reason %q", reason)
	}
	// rampart-agent's last line is the same sentence.
	if msg, ok := public.Message(err); !ok || msg != reason {
		t.Errorf("the agent would print %q (public %v), want the reported reason %q", msg, ok, reason)
	}
	b, err := booted(t, d)
	if err != nil || b.Info.Release != "1.1.0" {
		t.Fatalf("boot after refused rollback: %+v, %v", b, err)
	}
}

func TestHealthCheckFailureRollsBack(t *testing.T) {
	w := newWorld(t)
	r1, r2 := twoReleases(w)
	d := newDevice(t)
	ctx := context.Background()
	w.assign(r1)
	if _, err := w.updater(t, d, nil).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	w.assign(r2)
	sick := func(context.Context, Boot) error { return errors.New("service did not start") }
	out, err := w.updater(t, d, nil, func(c *Config) { c.Health = sick }).RunOnce(ctx)
	if !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("RunOnce: %v, want ErrUnhealthy", err)
	}
	if out.Committed || !strings.Contains(out.RolledBack, "service did not start") {
		t.Errorf("outcome = %+v", out)
	}
	if got := committedRelease(t, d); got != "1.0.0" {
		t.Errorf("committed release = %q, want 1.0.0", got)
	}
	s, _ := OpenSlots(d.slotsDir, nil)
	st, _ := s.State()
	if !strings.Contains(st.LastFailure, "service did not start") {
		t.Errorf("last failure = %q", st.LastFailure)
	}
	// The same set is not installed again (no boot loop, no re-download)...
	before := len(w.log())
	if _, err := w.updater(t, d, nil).RunOnce(ctx); !errors.Is(err, ErrPreviouslyFailed) {
		t.Fatalf("second run: %v, want ErrPreviouslyFailed", err)
	}
	for _, req := range w.log()[before:] {
		if strings.Contains(req, "/repo/targets/") {
			t.Errorf("downloaded again after a rollback: %s", req)
		}
	}
	// ...but a fixed release is.
	r3 := w.addRelease("1.2.0", 1, map[string][]byte{"rootfs": edit(r2.content["rootfs"], 11), "config": r1.content["config"]}, map[string]string{"config": "1.0.0"})
	w.assign(r3)
	if out, err := w.updater(t, d, nil).RunOnce(ctx); err != nil || !out.Committed || out.Release != "1.2.0" {
		t.Fatalf("fixed release: %+v, %v", out, err)
	}
}

func TestTrialBootLimit(t *testing.T) {
	w := newWorld(t)
	r1, r2 := twoReleases(w)
	d := newDevice(t)
	ctx := context.Background()
	w.assign(r1)
	if _, err := w.updater(t, d, nil).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	w.assign(r2)
	out, err := w.updater(t, d, nil).Install(ctx)
	if err != nil || !out.Installed {
		t.Fatalf("Install: %+v, %v", out, err)
	}
	// The trial slot crashes before its health check, boot after boot.
	var last Boot
	for i := range DefaultMaxBoots + 1 {
		last, err = booted(t, d)
		if err != nil {
			t.Fatalf("boot %d: %v", i+1, err)
		}
		if i < DefaultMaxBoots && (!last.Trial || last.Info.Release != "1.1.0") {
			t.Fatalf("boot %d = %+v, want trial 1.1.0", i+1, last)
		}
	}
	if last.Trial || last.Info.Release != "1.0.0" || last.RolledBack == "" || last.RolledBackRelease != "1.1.0" {
		t.Fatalf("boot past the limit = %+v, want rollback of 1.1.0 to 1.0.0", last)
	}
}

// TestRollbackReportsTheTrialRelease: a trial that never reached its health check is a failure
// of the trial's release, reported under that release, not under the one the device falls back
// to (which would count against an older deployment).
func TestRollbackReportsTheTrialRelease(t *testing.T) {
	w := newWorld(t)
	r1, r2 := twoReleases(w)
	d := newDevice(t)
	ctx := context.Background()
	w.assign(r1)
	if _, err := w.updater(t, d, nil).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	w.assign(r2)
	if out, err := w.updater(t, d, nil).Install(ctx); err != nil || !out.Installed {
		t.Fatalf("Install: %+v, %v", out, err)
	}
	for range DefaultMaxBoots {
		if _, err := booted(t, d); err != nil {
			t.Fatal(err)
		}
	}
	d.reports.reset()
	if _, err := w.updater(t, d, nil).FinishBoot(ctx); err != nil {
		t.Fatal(err)
	}
	d.reports.mu.Lock()
	got := slices.Clone(d.reports.s)
	d.reports.mu.Unlock()
	if len(got) != 1 || got[0].State != StateFailed || got[0].Release != "1.1.0" {
		t.Fatalf("reports after the rollback = %+v, want one failed 1.1.0", got)
	}
}

// TestCommitReportLost: a commit whose report never reached the server (the connection dropped,
// or power went right after the commit) is reported at the next run, and only until the server
// took it; otherwise the server would never learn the device's release and its deployment
// would wait for the device forever.
func TestCommitReportLost(t *testing.T) {
	w := newWorld(t)
	r1, _ := twoReleases(w)
	d := newDevice(t)
	ctx := context.Background()
	w.assign(r1)
	d.reports.lose = StateCommitted
	if out, err := w.updater(t, d, nil).RunOnce(ctx); err != nil || !out.Committed {
		t.Fatalf("RunOnce: %+v, %v", out, err)
	}
	if states := d.reports.states(); slices.Contains(states, StateCommitted) {
		t.Fatalf("reports %v; the committed one was to be lost", states)
	}
	committed := func() []string {
		d.reports.mu.Lock()
		defer d.reports.mu.Unlock()
		var out []string
		for _, s := range d.reports.s {
			if s.State == StateCommitted {
				out = append(out, s.Release)
			}
		}
		return out
	}
	for run := range 2 {
		if _, err := w.updater(t, d, nil).RunOnce(ctx); err != nil {
			t.Fatalf("run %d after the commit: %v", run+1, err)
		}
		if got := committed(); !slices.Equal(got, []string{"1.0.0"}) {
			t.Fatalf("run %d after the commit: committed reports %v, want [1.0.0] (states %v)", run+1, got, d.reports.states())
		}
	}
}

// TestInterrupted sorts install errors into failures of the release and interruptions.
func TestInterrupted(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("update.Install: %w", errPowerCut), true},
		{fmt.Errorf("update.Install: rootfs: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("update.Install: rootfs: %w", ErrSlowRetrieval), true},
		{fmt.Errorf("update.Install: %w", context.Canceled), true},
		{fmt.Errorf("update.Install: %w: bad signature", ErrMetadata), false},
		{fmt.Errorf("update.Install: rootfs: %w", ErrVerification), false},
		{fmt.Errorf("update.Install: %w", ErrRollback), false},
		{fmt.Errorf("update.Install: %w", ErrDirectorMismatch), false},
		{fmt.Errorf("update.Install: %w", ErrTooLarge), false},
		{fmt.Errorf("update.Install: %w", ErrPreviouslyFailed), false},
		{nil, false},
	} {
		if got := Interrupted(tc.err); got != tc.want {
			t.Errorf("Interrupted(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestSecurityVersionFloor(t *testing.T) {
	w := newWorld(t)
	d := newDevice(t)
	ctx := context.Background()
	base := image(5, 32<<10)
	r1 := w.addRelease("1.0.0", 3, map[string][]byte{"rootfs": base}, nil)
	w.assign(r1)
	if _, err := w.updater(t, d, nil).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// A newer version with a lower security version is still refused.
	r2 := w.addRelease("1.1.0", 2, map[string][]byte{"rootfs": edit(base, 1)}, nil)
	w.assign(r2)
	if _, err := w.updater(t, d, nil).RunOnce(ctx); !errors.Is(err, ErrRollback) {
		t.Fatalf("lower security version: %v, want ErrRollback", err)
	}
	if got := committedRelease(t, d); got != "1.0.0" {
		t.Errorf("committed release = %q", got)
	}
}

func TestResumeDownload(t *testing.T) {
	w := newWorld(t)
	rel := w.addRelease("1.0.0", 1, map[string][]byte{"rootfs": image(9, 300<<10)}, nil)
	w.assign(rel)
	d := newDevice(t)
	path := "/repo/targets/" + tuf.ImagePath(rel.images["rootfs"].SHA256)
	cut := true
	w.setIntercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != path || !cut {
			return false
		}
		cut = false
		// Announce the whole image, send a third, then drop the connection.
		b := rel.content["rootfs"]
		rw.Header().Set("Content-Length", strconv.Itoa(len(b)))
		rw.WriteHeader(http.StatusOK)
		rw.Write(b[:len(b)/3])
		rw.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	out, err := w.updater(t, d, nil).RunOnce(context.Background())
	if err != nil || !out.Committed {
		t.Fatalf("RunOnce: %+v, %v", out, err)
	}
	ranged := slices.ContainsFunc(w.log(), func(s string) bool {
		return strings.HasPrefix(s, "GET "+path+" bytes=") && !strings.HasSuffix(s, "bytes=0-")
	})
	if !ranged {
		t.Errorf("no resumed Range request in %v", w.log())
	}
}

// TestAgentDependencies keeps database, web-server and server-side signing
// code out of the agent's updater.
func TestAgentDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "the go command", "install Go to list the agent's dependencies")
	}
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"database/sql", "net/http/httptest", "html/template",
		"modernc.org/sqlite", "github.com/jackc/pgx", "github.com/spf13/cobra",
		"github.com/rampartsec/rampart/internal/tuf", "github.com/rampartsec/rampart/internal/store",
		"github.com/rampartsec/rampart/internal/api", "github.com/rampartsec/rampart/internal/server",
	}
	for _, dep := range strings.Fields(string(b)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("agent updater depends on %s", dep)
			}
		}
	}
}

func TestCorruptCommittedSlotFallsBack(t *testing.T) {
	w := newWorld(t)
	r1, r2 := twoReleases(w)
	d := newDevice(t)
	ctx := context.Background()
	for _, r := range []release{r1, r2} {
		w.assign(r)
		if out, err := w.updater(t, d, nil).RunOnce(ctx); err != nil || !out.Committed {
			t.Fatalf("install %s: %+v, %v", r.version, out, err)
		}
	}
	s, err := OpenSlots(d.slotsDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.State()
	// Flip one byte of the committed rootfs, as bit rot would.
	path := s.ComponentPath(st.Committed, "rootfs")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	boot, err := booted(t, d)
	if err != nil {
		t.Fatalf("boot with a corrupt committed slot: %v", err)
	}
	if boot.Info.Release != "1.0.0" || boot.Slot == st.Committed || !strings.Contains(boot.RolledBack, "failed verification") {
		t.Fatalf("boot = %+v, want a fallback to 1.0.0", boot)
	}
	// The next update rewrites the broken slot, never the running one.
	out, err := w.updater(t, d, nil).RunOnce(ctx)
	if err != nil || !out.Committed || out.Release != "1.1.0" {
		t.Fatalf("reinstall 1.1.0: %+v, %v", out, err)
	}
	if after, _ := booted(t, d); after.Slot != st.Committed || after.Info.Release != "1.1.0" {
		t.Errorf("after reinstall booted %+v", after)
	}
}

// fullDiskFS fails the move of one file into place, as a full disk would.
type fullDiskFS struct {
	OSFS
	path string
}

func (f fullDiskFS) Rename(oldpath, newpath string) error {
	if newpath == f.path {
		return syscall.ENOSPC
	}
	return f.OSFS.Rename(oldpath, newpath)
}

// A slot that cannot be written is reported as one sentence an operator can act on: what could
// not be written where, and the system's reason; no function names.
func TestSlotFailureReason(t *testing.T) {
	w := newWorld(t)
	r1, _ := twoReleases(w)
	d := newDevice(t)
	w.assign(r1)
	fsys := fullDiskFS{path: filepath.Join(d.slotsDir, SlotA, "rootfs")}
	_, err := w.updater(t, d, fsys).RunOnce(context.Background())
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("RunOnce: %v, want ENOSPC", err)
	}
	const want = "cannot move component rootfs into slot a: no space left on device"
	d.reports.mu.Lock()
	last := d.reports.s[len(d.reports.s)-1]
	d.reports.mu.Unlock()
	if last.State != StateInterrupted || last.Reason != want {
		t.Errorf("reported %s %q, want interrupted %q", last.State, last.Reason, want)
	}
	if msg, ok := public.Message(err); !ok || msg != want {
		t.Errorf("the agent would print %q (public %v), want %q", msg, ok, want)
	}
	if !strings.Contains(err.Error(), "update.Slots.PlaceComponent") {
		t.Errorf("the log line %q lost the operation", err.Error())
	}
}
