package module

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/agent/update/updatetest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// menderModules is the folder of Mender's community update modules: RAMPART_MENDER_MODULES
// (.ci/run unpacks Debian's mender-client package there without installing its daemon), or
// where the package installs them.
func menderModules(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{os.Getenv("RAMPART_MENDER_MODULES"), "/usr/share/mender/modules/v3"} {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "directory")); err == nil {
			return dir
		}
	}
	testenv.Missing(t, "Mender's update modules", "apt-get download mender-client && dpkg -x mender-client_*.deb DIR, then RAMPART_MENDER_MODULES=DIR/usr/share/mender/modules/v3 (.ci/run does this)")
	return ""
}

func requireArtifactTool(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("mender-artifact"); err != nil {
		testenv.Missing(t, "mender-artifact", "install Debian's mender-artifact package (it builds the test artifacts)")
	}
}

// buildArtifact builds a Mender artifact for module typ with mender-artifact, as an operator would.
func buildArtifact(t *testing.T, typ, name string, files map[string]string, meta string) []byte {
	t.Helper()
	dir := t.TempDir()
	args := []string{"write", "module-image", "-T", typ, "-n", name, "-t", "rampart-test", "-o", filepath.Join(dir, "a.mender"), "--compression", "gzip"}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte(files[n]), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-f", p)
	}
	if meta != "" {
		p := filepath.Join(dir, "meta.json")
		if err := os.WriteFile(p, []byte(meta), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-m", p)
	}
	if out, err := exec.Command("mender-artifact", args...).CombinedOutput(); err != nil {
		t.Fatalf("mender-artifact %v: %v\n%s", args, err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "a.mender"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarOf makes an uncompressed tar of files, for the directory module's update.tar.
func tarOf(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "update.tar")
	if b, err := exec.Command("tar", "-cf", out, "-C", dir, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// device is the agent's updater with the modules of dir.
type device struct {
	t      *testing.T
	w      *updatetest.World
	state  string
	dir    string
	boot   int
	rep    *updatetest.Recorder
	health update.HealthFunc
	cfg    Config
}

func newDevice(t *testing.T, modules string) *device {
	t.Helper()
	d := &device{t: t, w: updatetest.New(t), state: t.TempDir(), dir: modules, rep: &updatetest.Recorder{}}
	d.cfg = Config{Dir: modules, StateTimeout: time.Minute, RebootCommand: []string{"sh", "-c", "echo reboot >> " + filepath.Join(d.state, "reboots")}}
	return d
}

func (d *device) run() (update.Outcome, error) {
	d.t.Helper()
	mods, err := Open(d.cfg)
	if err != nil {
		d.t.Fatal(err)
	}
	cfg := d.w.Config(d.t, d.state, d.rep, nil)
	for _, m := range mods {
		cfg.Installers = append(cfg.Installers, m)
	}
	cfg.BootID = "boot-" + string(rune('0'+d.boot))
	cfg.Health = d.health
	u, err := update.New(cfg)
	if err != nil {
		d.t.Fatal(err)
	}
	return u.RunOnce(context.Background())
}

func (d *device) release(version, typ string, art []byte) {
	d.w.Assign(version, d.w.Release(version, 1, updatetest.Image{Component: "app", Type: typ, Bytes: art}))
}

func states(ss []update.Status) []update.InstallState {
	var out []update.InstallState
	for _, s := range ss {
		out = append(out, s.State)
	}
	return out
}

func last(ss []update.Status) update.Status {
	if len(ss) == 0 {
		return update.Status{}
	}
	return ss[len(ss)-1]
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDirectoryModule runs Mender's own directory module through the protocol: release 1.0.0
// installs a tree and commits without a reboot; 1.1.0 replaces it but fails its health check,
// and the module's ArtifactRollback restores 1.0.0's tree; a dest_dir of / is refused by the
// module and reported with its words.
func TestDirectoryModule(t *testing.T) {
	mods := menderModules(t)
	requireArtifactTool(t)
	d := newDevice(t, mods)
	dest := filepath.Join(t.TempDir(), "app")

	d.release("1.0.0", "module:directory", buildArtifact(t, "directory", "app-1.0.0",
		map[string]string{"update.tar": tarOf(t, map[string]string{"app.conf": "version=1.0.0\n"}), "dest_dir": dest}, ""))
	out, err := d.run()
	if err != nil || !out.Committed || out.Rebooting {
		t.Fatalf("install 1.0.0: %+v, %v", out, err)
	}
	if got := states(d.rep.Take()); !slices.Equal(got, []update.InstallState{update.StateDownloading, update.StateInstalling, update.StateInstalled, update.StateCommitted}) {
		t.Fatalf("reported %v", got)
	}
	if got := read(t, filepath.Join(dest, "app.conf")); got != "version=1.0.0\n" {
		t.Fatalf("installed %q", got)
	}

	d.health = func(context.Context, update.Boot) error { return errors.New("app does not answer") }
	d.release("1.1.0", "module:directory", buildArtifact(t, "directory", "app-1.1.0",
		map[string]string{"update.tar": tarOf(t, map[string]string{"app.conf": "version=1.1.0\n"}), "dest_dir": dest}, ""))
	out, err = d.run()
	if !errors.Is(err, update.ErrUnhealthy) || out.RolledBack == "" {
		t.Fatalf("install 1.1.0: %+v, %v", out, err)
	}
	if r := last(d.rep.Take()); r.State != update.StateRolledBack || r.Release != "1.1.0" || !strings.Contains(r.Reason, "health check failed: app does not answer") {
		t.Fatalf("report %+v", r)
	}
	if got := read(t, filepath.Join(dest, "app.conf")); got != "version=1.0.0\n" {
		t.Fatalf("after the rollback the tree holds %q, want 1.0.0's", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(d.state, "slots", "staging")); len(entries) != 0 {
		t.Fatalf("staging keeps %d entries after the rollback", len(entries))
	}

	d.health = nil
	d.release("1.2.0", "module:directory", buildArtifact(t, "directory", "app-1.2.0",
		map[string]string{"update.tar": tarOf(t, map[string]string{"x": "y"}), "dest_dir": "/"}, ""))
	if _, err := d.run(); err == nil {
		t.Fatal("a dest_dir of / was installed")
	}
	if r := last(d.rep.Take()); r.State != update.StateFailed || !strings.Contains(r.Reason, "update module directory failed in ArtifactInstall") ||
		!strings.Contains(r.Reason, "destination dir is '/'") {
		t.Fatalf("report %+v", r)
	}
}

// TestScriptModule runs Mender's script module: the artifact's scripts run at ArtifactInstall.
func TestScriptModule(t *testing.T) {
	mods := menderModules(t)
	requireArtifactTool(t)
	d := newDevice(t, mods)
	marker := filepath.Join(t.TempDir(), "ran")
	d.release("1.0.0", "module:script", buildArtifact(t, "script", "migrate-1",
		map[string]string{"10-migrate": "#!/bin/sh\necho migrated > " + marker + "\n"}, ""))
	if out, err := d.run(); err != nil || !out.Committed {
		t.Fatalf("install: %+v, %v", out, err)
	}
	if got := read(t, marker); got != "migrated\n" {
		t.Fatalf("the script wrote %q", got)
	}
	d.release("1.1.0", "module:script", buildArtifact(t, "script", "migrate-2",
		map[string]string{"10-migrate": "#!/bin/sh\necho 'disk full' >&2\nexit 3\n"}, ""))
	if _, err := d.run(); err == nil {
		t.Fatal("a failing script committed")
	}
	if r := last(d.rep.Take()); r.State != update.StateFailed || !strings.Contains(r.Reason, "failed in ArtifactInstall: exit status 3: disk full") {
		t.Fatalf("report %+v", r)
	}
}

// writeModule writes a test's own update module.
func writeModule(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\nSTATE=\"$1\"\nFILES=\"$2\"\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestModuleProtocol drives modules written for the test through the parts the community
// modules do not use: streaming in Download, an Automatic reboot with ArtifactVerifyReboot,
// a module that hangs, and one that answers NeedsArtifactReboot with garbage.
func TestModuleProtocol(t *testing.T) {
	requireArtifactTool(t)
	mods := t.TempDir()
	log := filepath.Join(t.TempDir(), "log")
	got := filepath.Join(t.TempDir(), "streamed")
	// streamer reads its payload from the streams in Download and records the states it sees.
	writeModule(t, mods, "streamer", `echo "$STATE" >> `+log+`
case "$STATE" in
Download)
  while read -r s < stream-next && [ -n "$s" ]; do cat "$s" >> `+got+`; done ;;
NeedsArtifactReboot) echo Automatic ;;
SupportsRollback) echo Yes ;;
ArtifactVerifyReboot) test -f header/payload_type && test -d tmp ;;
esac
exit 0
`)
	writeModule(t, mods, "sleeper", `case "$STATE" in ArtifactInstall) sleep 600 ;; esac
exit 0
`)
	writeModule(t, mods, "chatty", `case "$STATE" in NeedsArtifactReboot) echo "Maybe later, I am busy" ;; esac
exit 0
`)

	t.Run("stream, reboot, verify, commit", func(t *testing.T) {
		d := newDevice(t, mods)
		d.release("1.0.0", "module:streamer", buildArtifact(t, "streamer", "s-1", map[string]string{"a.bin": "first ", "b.bin": "second"}, `{"k":"v"}`))
		out, err := d.run()
		if err != nil || !out.Rebooting {
			t.Fatalf("install: %+v, %v", out, err)
		}
		if read(t, filepath.Join(d.state, "reboots")) != "reboot\n" {
			t.Fatal("the reboot command did not run")
		}
		d.boot++
		if out, err := d.run(); err != nil || !out.Committed {
			t.Fatalf("after the reboot: %+v, %v", out, err)
		}
		if s := read(t, got); s != "first second" {
			t.Fatalf("streamed %q", s)
		}
		want := "Download\nArtifactInstall\nNeedsArtifactReboot\nArtifactVerifyReboot\nArtifactCommit\nCleanup\n"
		if s := read(t, log); s != want {
			t.Fatalf("states called:\n%s\nwant:\n%s", s, want)
		}
	})
	t.Run("hangs", func(t *testing.T) {
		d := newDevice(t, mods)
		d.cfg.StateTimeout = 2 * time.Second
		d.release("1.0.0", "module:sleeper", buildArtifact(t, "sleeper", "z-1", map[string]string{"f": "x"}, ""))
		if _, err := d.run(); err == nil {
			t.Fatal("a hung module committed")
		}
		if r := last(d.rep.Take()); r.State != update.StateFailed || !strings.Contains(r.Reason, "did not finish ArtifactInstall within 2s") {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("garbage NeedsArtifactReboot", func(t *testing.T) {
		d := newDevice(t, mods)
		d.release("1.0.0", "module:chatty", buildArtifact(t, "chatty", "c-1", map[string]string{"f": "x"}, ""))
		if _, err := d.run(); err == nil {
			t.Fatal("committed after a garbage answer")
		}
		if r := last(d.rep.Take()); r.State != update.StateFailed || !strings.Contains(r.Reason, `answered NeedsArtifactReboot with "Maybe later, I am busy"`) {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("payload for another module", func(t *testing.T) {
		d := newDevice(t, mods)
		d.release("1.0.0", "module:chatty", buildArtifact(t, "streamer", "c-1", map[string]string{"f": "x"}, ""))
		if _, err := d.run(); err == nil {
			t.Fatal("installed an artifact for another module")
		}
		if r := last(d.rep.Take()); r.State != update.StateFailed || !strings.Contains(r.Reason, `payload is for update module "streamer", not chatty`) {
			t.Fatalf("report %+v", r)
		}
	})
}
