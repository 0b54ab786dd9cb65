package rauc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/agent/update/updatetest"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/raucbundle"
	"github.com/rampartsec/rampart/internal/testenv"
)

// device is a RAUC device on this machine: Debian's `rauc service` on a private D-Bus daemon,
// two file-backed raw root slots (bootnames A and B) and a bootloader played by a custom
// backend script over a state file, whose choice at each "boot" the test reads (or overrides,
// to play a bootloader that fell back).
type device struct {
	t       *testing.T
	dir     string
	bus     string // the private bus's address
	boot    string // bootname booted now
	bootN   int    // boot counter, for the boot id
	service *exec.Cmd
	// state is the agent's state folder under dir; bundles counts the bundles built.
	state   string
	bundles int
}

const compatible = "rampart-test"

func requireTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root", "RAUC installs bundles through loop devices: run the RAUC tests as root")
	}
	for _, tool := range []string{"rauc", "dbus-daemon", "mksquashfs", "unsquashfs", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, tool, "install Debian's rauc, dbus and squashfs-tools packages (and openssl)")
		}
	}
}

// bootloader is the custom backend: a state file of PRIMARY=, STATE_<bootname>= lines. RAUC
// marks a slot bad before it writes it and makes it primary after; like the GRUB backend,
// set-primary also makes the slot bootable again.
const bootloader = `#!/bin/sh
# A bootloader for tests: RAUC's custom backend protocol over a state file.
set -e
f="$(dirname "$0")/bootstate"
get() { sed -n "s/^$1=//p" "$f"; }
set_() { if grep -q "^$1=" "$f"; then sed -i "s/^$1=.*/$1=$2/" "$f"; else echo "$1=$2" >> "$f"; fi; }
case "$1" in
get-primary) get PRIMARY ;;
set-primary) set_ PRIMARY "$2"; set_ "STATE_$2" good ;; # like GRUB's backend: primary and bootable
get-state) get "STATE_$2" ;;
set-state) set_ "STATE_$2" "$3" ;;
*) echo "unknown command $1" >&2; exit 1 ;;
esac
`

func newDevice(t *testing.T) *device {
	t.Helper()
	requireTools(t)
	dir := t.TempDir()
	d := &device{t: t, dir: dir, boot: "A", state: "agent"}
	run(t, dir, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
		"-subj", "/CN=rampart test bundles", "-days", "30")
	run(t, dir, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-key.pem", "-out", "other-cert.pem",
		"-subj", "/CN=someone else", "-days", "30")
	for _, p := range []string{"images", "mnt", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"images/rootfs-0", "images/rootfs-1"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("factory image\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(dir, "bootloader.sh"), bootloader, 0o700)
	write(t, filepath.Join(dir, "bootstate"), "PRIMARY=A\nSTATE_A=good\nSTATE_B=good\n", 0o600)
	write(t, filepath.Join(dir, "reboot.sh"), "#!/bin/sh\necho reboot >> \"$(dirname \"$0\")/reboots\"\n", 0o700)
	write(t, filepath.Join(dir, "system.conf"), fmt.Sprintf(`[system]
compatible=%s
bootloader=custom
statusfile=%s/data/central.raucs

[handlers]
bootloader-custom-backend=%s/bootloader.sh

[keyring]
path=%s/cert.pem

[slot.rootfs.0]
device=%s/images/rootfs-0
type=raw
bootname=A

[slot.rootfs.1]
device=%s/images/rootfs-1
type=raw
bootname=B
`, compatible, dir, dir, dir, dir, dir), 0o600)

	// A private bus: dbus-daemon prints its address once it listens.
	bus := exec.Command("dbus-daemon", "--session", "--nofork", "--address=unix:path="+filepath.Join(dir, "bus"), "--print-address=1")
	out, err := bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Process.Kill(); bus.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	d.bus = strings.TrimSpace(line)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", d.bus)
	d.start()
	t.Cleanup(d.stop)
	return d
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func write(t *testing.T, path, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
}

// start runs `rauc service` as booted from d.boot.
func (d *device) start() {
	t := d.t
	t.Helper()
	cmd := exec.Command("rauc", "service", "--conf="+filepath.Join(d.dir, "system.conf"), "--mount="+filepath.Join(d.dir, "mnt"),
		"--override-boot-slot="+d.boot)
	cmd.Env = append(os.Environ(), "DBUS_STARTER_BUS_TYPE=session", "DBUS_SESSION_BUS_ADDRESS="+d.bus)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.service = cmd
	conn, err := dbus.Connect(d.bus)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	testenv.WaitFor(t, "rauc service on the private bus", func() bool {
		var has bool
		return conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, busName).Store(&has) == nil && has
	})
}

func (d *device) stop() {
	if d.service == nil {
		return
	}
	d.service.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { d.service.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.service.Process.Kill()
		<-done
	}
	d.service = nil
}

// reboot plays a reboot: RAUC stops, the bootloader picks a slot (the primary if it is good,
// else the other; or force when set) and RAUC starts as booted from it, in a new boot.
func (d *device) reboot(force string) {
	d.t.Helper()
	d.stop()
	st := d.bootState()
	next := st["PRIMARY"]
	if st["STATE_"+next] != "good" {
		next = map[string]string{"A": "B", "B": "A"}[next]
	}
	if force != "" {
		next = force
	}
	d.boot = next
	d.bootN++
	d.start()
}

func (d *device) bootState() map[string]string {
	b, err := os.ReadFile(filepath.Join(d.dir, "bootstate"))
	if err != nil {
		d.t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

func (d *device) reboots() int {
	b, _ := os.ReadFile(filepath.Join(d.dir, "reboots"))
	return strings.Count(string(b), "reboot")
}

func (d *device) bootID() string { return fmt.Sprintf("boot-%d", d.bootN) }

// bundle builds and signs a RAUC bundle of a rootfs image with `rauc bundle`.
func (d *device) bundle(version string, rootfs []byte, signer string) (path string, data []byte) {
	t := d.t
	t.Helper()
	d.bundles++
	content := filepath.Join(d.dir, fmt.Sprintf("content-%d", d.bundles))
	if err := os.MkdirAll(content, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(content, "rootfs.img"), string(rootfs), 0o600)
	write(t, filepath.Join(content, "manifest.raucm"), fmt.Sprintf("[update]\ncompatible=%s\nversion=%s\n\n[image.rootfs]\nfilename=rootfs.img\n", compatible, version), 0o600)
	path = filepath.Join(d.dir, fmt.Sprintf("bundle-%d-%s.raucb", d.bundles, version))
	key, cert := "key.pem", "cert.pem"
	if signer == "other" {
		key, cert = "other-key.pem", "other-cert.pem"
	}
	run(t, d.dir, "rauc", "bundle", "--cert="+cert, "--key="+key, content, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// agent is the device's updater with the RAUC installer, as `rampart-agent run` builds it.
func (d *device) agent(w *updatetest.World, rep update.Reporter, health update.HealthFunc) *update.Updater {
	d.t.Helper()
	in, err := New(Config{Bus: BusSession, RebootCommand: []string{filepath.Join(d.dir, "reboot.sh")}})
	if err != nil {
		d.t.Fatal(err)
	}
	cfg := w.Config(d.t, filepath.Join(d.dir, d.state), rep, nil)
	cfg.Installers = []update.Installer{in}
	cfg.BootID = d.bootID()
	cfg.Health = health
	u, err := update.New(cfg)
	if err != nil {
		d.t.Fatal(err)
	}
	return u
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

func manifestHash(t *testing.T, path string) string {
	t.Helper()
	info, err := raucbundle.Inspect(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return info.ManifestHash
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestRAUCInstallRebootCommit installs a bundle through the real RAUC service, reboots into the
// other slot and commits it after the health check; then a second release whose health check
// fails is marked bad after its reboot, the bootloader falls back, and the server hears
// rolled_back with the reason.
func TestRAUCInstallRebootCommit(t *testing.T) {
	d := newDevice(t)
	w := updatetest.New(t)
	rep := &updatetest.Recorder{}
	ctx := context.Background()

	rootfs1 := bytes.Repeat([]byte("rootfs 1.0.1 "), 5000)
	path, bundle := d.bundle("1.0.1", rootfs1, "ours")
	imgs := w.Release("1.0.1", 1, updatetest.Image{Component: "rootfs", Type: deviceapi.ImageTypeRAUC, RAUCManifestHash: manifestHash(t, path), Bytes: bundle})
	w.Assign("1.0.1", imgs)

	out, err := d.agent(w, rep, nil).RunOnce(ctx)
	if err != nil || !out.Rebooting || !out.Installed || out.Installer != deviceapi.ImageTypeRAUC {
		t.Fatalf("install 1.0.1: %+v, %v", out, err)
	}
	if got := states(rep.Take()); !slices.Equal(got, []update.InstallState{update.StateDownloading, update.StateInstalling, update.StateInstalled, update.StateRebooting}) {
		t.Fatalf("reported %v", got)
	}
	if d.reboots() != 1 || d.bootState()["PRIMARY"] != "B" {
		t.Fatalf("after install: %d reboots, boot state %v; want one reboot and B primary", d.reboots(), d.bootState())
	}
	if got := fileSum(t, filepath.Join(d.dir, "images/rootfs-1")); got != sum(rootfs1) {
		t.Fatalf("slot rootfs.1 holds %s, want the bundle's rootfs %s", got, sum(rootfs1))
	}
	j, err := update.ReadJournal(filepath.Join(d.dir, "agent", "update"))
	if err != nil || j.Phase != update.PhaseRebooting {
		t.Fatalf("journal before the reboot: %+v, %v", j, err)
	}

	// The agent starts again in the same boot (the reboot command has not rebooted yet): it asks again.
	if out, err := d.agent(w, rep, nil).RunOnce(ctx); err != nil || !out.Rebooting || d.reboots() != 2 {
		t.Fatalf("same boot: %+v, %v, %d reboots", out, err, d.reboots())
	}
	rep.Take()

	d.reboot("")
	healthRan := ""
	health := func(_ context.Context, b update.Boot) error { healthRan = b.Info.Release + "@" + b.Slot; return nil }
	out, err = d.agent(w, rep, health).RunOnce(ctx)
	if err != nil || !out.Committed {
		t.Fatalf("after the reboot: %+v, %v", out, err)
	}
	if healthRan != "1.0.1@rootfs.1" {
		t.Fatalf("health check ran for %q", healthRan)
	}
	if r := last(rep.Take()); r.State != update.StateCommitted || r.Release != "1.0.1" {
		t.Fatalf("last report %+v, want committed 1.0.1", r)
	}
	st := New2(t, d).Status(ctx)
	if st.BootedSlot != "B" || len(st.Slots) != 2 {
		t.Fatalf("RAUC status %+v", st)
	}
	for _, s := range st.Slots {
		if s.Name == "rootfs.1" && (s.State != "booted" || s.BootStatus != "good") {
			t.Fatalf("rootfs.1 is %+v, want booted and good", s)
		}
	}

	// 1.0.2 installs into slot A, boots, fails its health check: marked bad, the device reboots
	// and the bootloader falls back to B.
	rootfs2 := bytes.Repeat([]byte("rootfs 1.0.2 "), 5000)
	path2, bundle2 := d.bundle("1.0.2", rootfs2, "ours")
	imgs2 := w.Release("1.0.2", 1, updatetest.Image{Component: "rootfs", Type: deviceapi.ImageTypeRAUC, RAUCManifestHash: manifestHash(t, path2), Bytes: bundle2})
	w.Assign("1.0.2", imgs2)
	if out, err := d.agent(w, rep, nil).RunOnce(ctx); err != nil || !out.Rebooting {
		t.Fatalf("install 1.0.2: %+v, %v", out, err)
	}
	d.reboot("")
	if d.boot != "A" {
		t.Fatalf("booted %s after installing 1.0.2, want A", d.boot)
	}
	sick := func(context.Context, update.Boot) error { return errors.New("service gatewayd is not running") }
	out, err = d.agent(w, rep, sick).RunOnce(ctx)
	if err != nil || !out.Rebooting {
		t.Fatalf("failed health check: %+v, %v", out, err)
	}
	if bs := d.bootState(); bs["STATE_A"] != "bad" {
		t.Fatalf("boot state %v, want A marked bad", bs)
	}
	d.reboot("")
	if d.boot != "B" {
		t.Fatalf("the bootloader booted %s, want the fallback to B", d.boot)
	}
	// GRUB counts the fallback boot as a try of B, unconfirmed until someone marks it good:
	// played here by B's state, which the agent must set good again (and B primary).
	write(t, filepath.Join(d.dir, "bootstate"), "PRIMARY=A\nSTATE_A=bad\nSTATE_B=tried\n", 0o600)
	rep.Take()
	out, err = d.agent(w, rep, sick).RunOnce(ctx)
	if !errors.Is(err, update.ErrUnhealthy) || out.RolledBack == "" {
		t.Fatalf("after the fallback: %+v, %v", out, err)
	}
	r := last(rep.Take())
	if r.State != update.StateRolledBack || r.Release != "1.0.2" || !strings.Contains(r.Reason, "health check failed: service gatewayd is not running") {
		t.Fatalf("last report %+v, want rolled_back 1.0.2 with the health check's reason", r)
	}
	if bs := d.bootState(); bs["STATE_B"] != "good" || bs["PRIMARY"] != "B" || bs["STATE_A"] != "bad" {
		t.Fatalf("boot state after the rollback %v, want B good and primary, A bad", bs)
	}
	// The same release is not tried again; the committed one stays.
	if out, err := d.agent(w, rep, nil).RunOnce(ctx); !errors.Is(err, update.ErrPreviouslyFailed) || out.Rebooting {
		t.Fatalf("run after the rollback: %+v, %v", out, err)
	}
	if j, _ := update.ReadJournal(filepath.Join(d.dir, "agent", "update")); j.Release != "1.0.1" || j.Phase != "" {
		t.Fatalf("journal %+v, want 1.0.1 committed and nothing under way", j)
	}
}

// New2 is an installer on the device's bus, for reading RAUC's status.
func New2(t *testing.T, d *device) *Installer {
	in, err := New(Config{Bus: BusSession, RebootCommand: []string{filepath.Join(d.dir, "reboot.sh")}})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestRAUCBootsOldSlot plays a bootloader that boots the old slot after the install (the new
// one never came up): the agent reports rolled_back with the slots it saw, marks the installed
// slot bad, and does not commit.
func TestRAUCBootsOldSlot(t *testing.T) {
	d := newDevice(t)
	w := updatetest.New(t)
	rep := &updatetest.Recorder{}
	ctx := context.Background()
	path, bundle := d.bundle("1.0.1", bytes.Repeat([]byte("new "), 4000), "ours")
	w.Assign("1.0.1", w.Release("1.0.1", 1, updatetest.Image{Component: "rootfs", Type: deviceapi.ImageTypeRAUC, RAUCManifestHash: manifestHash(t, path), Bytes: bundle}))
	if out, err := d.agent(w, rep, nil).RunOnce(ctx); err != nil || !out.Rebooting {
		t.Fatalf("install: %+v, %v", out, err)
	}
	d.reboot("A")
	rep.Take()
	out, err := d.agent(w, rep, nil).RunOnce(ctx)
	if !errors.Is(err, update.ErrUnhealthy) || out.Committed {
		t.Fatalf("after booting the old slot: %+v, %v", out, err)
	}
	r := last(rep.Take())
	if r.State != update.StateRolledBack || !strings.Contains(r.Reason, "booted slot A, not the installed rootfs.1 (B)") {
		t.Fatalf("report %+v", r)
	}
	if bs := d.bootState(); bs["STATE_B"] != "bad" || bs["PRIMARY"] != "A" {
		t.Fatalf("boot state %v, want B bad and A primary", bs)
	}
}

// TestRAUCRefusals: a bundle RAUC rejects (signed by a key not in its keyring), a bundle whose
// manifest hash is not the signed one, and RAUC absent from the bus each end as a reported
// failure with RAUC's or the agent's reason; no slot is written and nothing is left under way.
func TestRAUCRefusals(t *testing.T) {
	d := newDevice(t)
	ctx := context.Background()
	slot1 := fileSum(t, filepath.Join(d.dir, "images/rootfs-1"))
	check := func(t *testing.T, rep *updatetest.Recorder, err error, want string) {
		t.Helper()
		if err == nil {
			t.Fatal("the install succeeded")
		}
		r := last(rep.Take())
		if r.State != update.StateFailed || !strings.Contains(r.Reason, want) {
			t.Fatalf("report %+v, want failed with %q", r, want)
		}
		if got := fileSum(t, filepath.Join(d.dir, "images/rootfs-1")); got != slot1 {
			t.Fatal("the inactive slot was written")
		}
		if d.reboots() != 0 {
			t.Fatal("the device rebooted")
		}
	}
	t.Run("rejected by RAUC", func(t *testing.T) {
		d.state = "agent-rejected"
		w := updatetest.New(t)
		rep := &updatetest.Recorder{}
		path, bundle := d.bundle("1.0.1", []byte("image"), "other")
		w.Assign("1.0.1", w.Release("1.0.1", 1, updatetest.Image{Component: "rootfs", Type: deviceapi.ImageTypeRAUC, RAUCManifestHash: manifestHash(t, path), Bytes: bundle}))
		_, err := d.agent(w, rep, nil).RunOnce(ctx)
		check(t, rep, err, "RAUC refused the bundle")
	})
	t.Run("manifest hash differs", func(t *testing.T) {
		d.state = "agent-hash"
		w := updatetest.New(t)
		rep := &updatetest.Recorder{}
		_, bundle := d.bundle("1.0.1", []byte("image"), "ours")
		w.Assign("1.0.1", w.Release("1.0.1", 1, updatetest.Image{Component: "rootfs", Type: deviceapi.ImageTypeRAUC, RAUCManifestHash: strings.Repeat("ab", 32), Bytes: bundle}))
		_, err := d.agent(w, rep, nil).RunOnce(ctx)
		check(t, rep, err, "is not the signed "+strings.Repeat("ab", 32))
	})
	t.Run("D-Bus unavailable", func(t *testing.T) {
		d.state = "agent-nobus"
		w := updatetest.New(t)
		rep := &updatetest.Recorder{}
		path, bundle := d.bundle("1.0.1", []byte("image"), "ours")
		w.Assign("1.0.1", w.Release("1.0.1", 1, updatetest.Image{Component: "rootfs", Type: deviceapi.ImageTypeRAUC, RAUCManifestHash: manifestHash(t, path), Bytes: bundle}))
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(d.dir, "no-bus"))
		u := d.agent(w, rep, nil)
		_, err := u.RunOnce(ctx)
		check(t, rep, err, "D-Bus is not reachable")
		// A device problem, not the release's: the next run tries again (and fails again, said).
		_, err = u.RunOnce(ctx)
		check(t, rep, err, "D-Bus is not reachable")
	})
	t.Run("type without installer", func(t *testing.T) {
		d.state = "agent-notype"
		w := updatetest.New(t)
		rep := &updatetest.Recorder{}
		w.Assign("1.0.1", w.Release("1.0.1", 1, updatetest.Image{Component: "app", Type: "module:docker", Bytes: []byte("compose")}))
		_, err := d.agent(w, rep, nil).RunOnce(ctx)
		check(t, rep, err, "this agent cannot install module:docker images (it installs directory, rauc-bundle)")
	})
}
