// Package rauc is the agent's installer for the rauc-bundle image type: it hands a bundle the
// updater already verified against the image repository and the director to the device's RAUC
// service over D-Bus (de.pengutronix.rauc.Installer), follows the install to its Completed
// signal, reboots with the configured command, confirms after the reboot that the device booted
// the installed slot, and marks it good, or marks it bad so that the bootloader falls back.
//
// It is imported by the agent only (internal/agent/runner and internal/agent/command).
package rauc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/raucbundle"
)

// RAUC's D-Bus names.
const (
	busName   = "de.pengutronix.rauc"
	iface     = "de.pengutronix.rauc.Installer"
	objPath   = dbus.ObjectPath("/")
	propsGet  = "org.freedesktop.DBus.Properties.Get"
	optManHas = "require-manifest-hash"
)

// Buses the installer talks to RAUC on.
const (
	BusSystem  = "system"
	BusSession = "session"
)

// Data keys the installer keeps in the journal (update.Artifact.Data).
const (
	dataBootedBefore = "booted_before" // bootname of the slot booted when the install began
	dataBootname     = "bootname"      // bootname of the installed slot
	dataHashChecked  = "manifest_hash_checked_by"
)

// DefaultInstallTimeout bounds one InstallBundle, from the call to the Completed signal.
const DefaultInstallTimeout = time.Hour

// Config configures the RAUC installer.
type Config struct {
	// Bus is BusSystem (a device) or BusSession (tests, on a private dbus-daemon whose address
	// is in DBUS_SESSION_BUS_ADDRESS).
	Bus string
	// RebootCommand reboots the device after an install or a rollback (required to install;
	// `rampart-agent status` needs none).
	RebootCommand []string
	// InstallTimeout bounds one install; DefaultInstallTimeout when zero.
	InstallTimeout time.Duration
	Logger         *slog.Logger
}

// Installer installs rauc-bundle images. It implements update.Installer.
type Installer struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and returns the installer; it does not connect yet (RAUC may start later).
func New(cfg Config) (*Installer, error) {
	if cfg.Bus != BusSystem && cfg.Bus != BusSession {
		return nil, public.Errorf(public.Invalid, "--rauc-bus %q is not system or session", cfg.Bus)
	}
	if cfg.InstallTimeout <= 0 {
		cfg.InstallTimeout = DefaultInstallTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Installer{cfg: cfg, log: cfg.Logger}, nil
}

// Type implements update.Installer.
func (i *Installer) Type() string { return deviceapi.ImageTypeRAUC }

// client is one connection to RAUC.
type client struct {
	conn *dbus.Conn
	obj  dbus.BusObject
}

func (i *Installer) connect(ctx context.Context) (*client, error) {
	var conn *dbus.Conn
	var err error
	if i.cfg.Bus == BusSession {
		conn, err = dbus.ConnectSessionBus(dbus.WithContext(ctx))
	} else {
		conn, err = dbus.ConnectSystemBus(dbus.WithContext(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", update.ErrInstallerUnavailable, public.Errorf(public.Unavailable, "the %s D-Bus is not reachable: %v", i.cfg.Bus, err))
	}
	c := &client{conn: conn, obj: conn.Object(busName, objPath)}
	if _, err := c.prop(ctx, "Operation"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: %w", update.ErrInstallerUnavailable, public.Errorf(public.Unavailable, "RAUC is not on the %s D-Bus: %v", i.cfg.Bus, dbusText(err)))
	}
	return c, nil
}

func (c *client) close() { c.conn.Close() }

func (c *client) prop(ctx context.Context, name string) (dbus.Variant, error) {
	var v dbus.Variant
	err := c.obj.CallWithContext(ctx, propsGet, 0, iface, name).Store(&v)
	return v, err
}

// booted reads the slot the device booted (RAUC's BootSlot, a bootname) and whether it is the
// slot the install a wrote.
func (c *client) booted(ctx context.Context, a *update.Artifact) (slot string, installed bool, err error) {
	slot, err = c.stringProp(ctx, "BootSlot")
	if err != nil {
		return "", false, raucErr("cannot read the booted slot", err)
	}
	return slot, a.Data[dataBootname] != "" && slot == a.Data[dataBootname], nil
}

func (c *client) stringProp(ctx context.Context, name string) (string, error) {
	v, err := c.prop(ctx, name)
	if err != nil {
		return "", err
	}
	s, ok := v.Value().(string)
	if !ok {
		return "", fmt.Errorf("RAUC's %s is a %s, not a string", name, v.Signature())
	}
	return s, nil
}

// Slot is one slot as RAUC's GetSlotStatus describes it.
type Slot struct {
	Name       string `json:"name"`
	Class      string `json:"class,omitempty"`
	Bootname   string `json:"bootname,omitempty"`
	State      string `json:"state,omitempty"`       // booted, active, inactive
	BootStatus string `json:"boot_status,omitempty"` // good, bad
	Version    string `json:"bundle_version,omitempty"`
	Installed  string `json:"installed,omitempty"` // installed.timestamp
}

func (c *client) slots(ctx context.Context) ([]Slot, error) {
	var raw []struct {
		Name  string
		Props map[string]dbus.Variant
	}
	if err := c.obj.CallWithContext(ctx, iface+".GetSlotStatus", 0).Store(&raw); err != nil {
		return nil, err
	}
	str := func(m map[string]dbus.Variant, k string) string {
		if v, ok := m[k]; ok {
			if s, ok := v.Value().(string); ok {
				return s
			}
		}
		return ""
	}
	out := make([]Slot, 0, len(raw))
	for _, r := range raw {
		out = append(out, Slot{Name: r.Name, Class: str(r.Props, "class"), Bootname: str(r.Props, "bootname"), State: str(r.Props, "state"),
			BootStatus: str(r.Props, "boot-status"), Version: str(r.Props, "bundle.version"), Installed: str(r.Props, "installed.timestamp")})
	}
	return out, nil
}

func (c *client) mark(ctx context.Context, state, slot string) (string, error) {
	var name, msg string
	if err := c.obj.CallWithContext(ctx, iface+".Mark", 0, state, slot).Store(&name, &msg); err != nil {
		return "", err
	}
	return msg, nil
}

// Install implements update.Installer: it checks the bundle's manifest hash against the signed
// one, then has RAUC install it, requiring that manifest hash where RAUC can check it.
func (i *Installer) Install(ctx context.Context, a *update.Artifact) (bool, error) {
	info, err := raucbundle.Inspect(ctx, a.Path)
	if err != nil {
		return false, public.Errorf(public.Unavailable, "the bundle cannot be read: %v", err)
	}
	if info.ManifestHash != a.RAUCManifestHash {
		return false, public.Errorf(public.Unavailable, "the bundle's manifest hash %s is not the signed %s; it was not handed to RAUC", info.ManifestHash, a.RAUCManifestHash)
	}
	c, err := i.connect(ctx)
	if err != nil {
		return false, err
	}
	defer c.close()
	booted, err := c.stringProp(ctx, "BootSlot")
	if err != nil {
		return false, raucErr("cannot read the booted slot", err)
	}
	a.Data[dataBootedBefore] = booted

	if err := c.conn.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(objPath), dbus.WithMatchInterface(iface), dbus.WithMatchMember("Completed")); err != nil {
		return false, raucErr("cannot follow the install", err)
	}
	signals := make(chan *dbus.Signal, 16)
	c.conn.Signal(signals)
	defer c.conn.RemoveSignal(signals)

	args := map[string]dbus.Variant{}
	if info.Format != raucbundle.FormatPlain {
		// RAUC checks the hash itself, on the manifest it verified (RAUC 1.14 and later; it
		// refuses the option for plain bundles, whose manifest the agent checked above).
		args[optManHas] = dbus.MakeVariant(a.RAUCManifestHash)
	}
	a.Data[dataHashChecked] = "agent"
	err = c.obj.CallWithContext(ctx, iface+".InstallBundle", 0, a.Path, args).Err
	if err != nil && len(args) > 0 && strings.Contains(dbusText(err), "Unsupported key: "+optManHas) {
		// An older RAUC (before 1.14) does not know the option. The agent checked the manifest
		// hash of the verified file, which only root can write, so it installs it without.
		i.log.Info("RAUC does not take require-manifest-hash; the agent checked the manifest hash itself")
		err = c.obj.CallWithContext(ctx, iface+".InstallBundle", 0, a.Path, map[string]dbus.Variant{}).Err
	} else if err == nil && len(args) > 0 {
		a.Data[dataHashChecked] = "agent and RAUC"
	}
	if err != nil {
		return false, raucErr("RAUC did not start the install", err)
	}
	if err := i.wait(ctx, c, signals); err != nil {
		return false, err
	}
	primary := ""
	if err := c.obj.CallWithContext(ctx, iface+".GetPrimary", 0).Store(&primary); err != nil {
		return false, raucErr("RAUC installed the bundle but cannot say which slot boots next", err)
	}
	slots, err := c.slots(ctx)
	if err != nil {
		return false, raucErr("cannot read the slots", err)
	}
	for _, s := range slots {
		if s.Name == primary {
			a.Data[update.DataSlot], a.Data[dataBootname] = s.Name, s.Bootname
		}
	}
	if a.Data[dataBootname] == "" || a.Data[dataBootname] == booted {
		return false, public.Errorf(public.Unavailable, "RAUC installed the bundle but the slot to boot next is %q, not another root slot than the booted %s", primary, booted)
	}
	return true, nil
}

// wait follows RAUC's Operation and Progress until the Completed signal, and reads LastError
// when the result is not 0.
func (i *Installer) wait(ctx context.Context, c *client, signals <-chan *dbus.Signal) error {
	ctx, cancel := context.WithTimeout(ctx, i.cfg.InstallTimeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return public.Errorf(public.Unavailable, "RAUC did not complete the install within %s", i.cfg.InstallTimeout)
		case s, ok := <-signals:
			if !ok {
				return fmt.Errorf("%w: %w", update.ErrInstallerUnavailable, public.Errorf(public.Unavailable, "the D-Bus connection to RAUC closed during the install"))
			}
			if s.Name != iface+".Completed" || len(s.Body) != 1 {
				continue
			}
			result, _ := s.Body[0].(int32)
			if result == 0 {
				return nil
			}
			msg, err := c.stringProp(ctx, "LastError")
			if err != nil || msg == "" {
				msg = fmt.Sprintf("result %d", result)
			}
			return public.Errorf(public.Unavailable, "RAUC refused the bundle: %s", strings.TrimSpace(msg))
		case <-tick.C:
			v, err := c.prop(ctx, "Progress")
			if err != nil {
				return fmt.Errorf("%w: %w", update.ErrInstallerUnavailable, raucErr("RAUC left the bus during the install", err))
			}
			var p struct {
				Percent int32
				Message string
				Depth   int32
			}
			if dbus.Store([]any{v.Value()}, &p) == nil {
				if line := fmt.Sprintf("%d%% %s", p.Percent, p.Message); line != last {
					i.log.Info("RAUC", "progress", line)
					last = line
				}
			}
		}
	}
}

// Reboot implements update.Installer with the configured command.
func (i *Installer) Reboot(ctx context.Context, a *update.Artifact) error {
	if len(i.cfg.RebootCommand) == 0 {
		return public.Errorf(public.Unavailable, "RAUC installed the bundle but the agent has no --reboot-cmd; reboot the device")
	}
	cmd := exec.CommandContext(ctx, i.cfg.RebootCommand[0], i.cfg.RebootCommand[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return public.Errorf(public.Unavailable, "the reboot command %q failed: %v: %s", strings.Join(i.cfg.RebootCommand, " "), err, update.LastLine(out, 200))
	}
	return nil
}

// Verify implements update.Installer: the booted slot must be the installed one.
func (i *Installer) Verify(ctx context.Context, a *update.Artifact) error {
	c, err := i.connect(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	booted, installed, err := c.booted(ctx, a)
	if err != nil {
		return err
	}
	if !installed {
		return public.Errorf(public.Unavailable, "the device booted slot %s, not the installed %s (%s): the bootloader fell back", booted, a.Data[update.DataSlot], a.Data[dataBootname])
	}
	return nil
}

// Commit implements update.Installer: mark the booted (installed) slot good.
func (i *Installer) Commit(ctx context.Context, a *update.Artifact) error {
	c, err := i.connect(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.mark(ctx, "good", "booted"); err != nil {
		return raucErr("cannot mark the booted slot good", err)
	}
	return nil
}

// Rollback implements update.Installer. Running the installed slot, it marks it bad and asks
// for a reboot, after which the bootloader boots the other; running the old slot, it marks the
// installed slot bad (so the bootloader never tries it again) and keeps the booted one active.
func (i *Installer) Rollback(ctx context.Context, a *update.Artifact, reason string) (bool, error) {
	c, err := i.connect(ctx)
	if err != nil {
		return false, err
	}
	defer c.close()
	_, installed, err := c.booted(ctx, a)
	if err != nil {
		return false, err
	}
	if installed {
		if _, err := c.mark(ctx, "bad", "booted"); err != nil {
			return false, raucErr("cannot mark the booted slot bad", err)
		}
		return true, nil
	}
	if slot := a.Data[update.DataSlot]; slot != "" {
		if _, err := c.mark(ctx, "bad", slot); err != nil {
			return false, raucErr("cannot mark slot "+slot+" bad", err)
		}
	}
	// An install cut short may have made the other slot primary already: keep the booted one.
	if _, err := c.mark(ctx, "active", "booted"); err != nil {
		return false, raucErr("cannot keep the booted slot active", err)
	}
	return false, nil
}

// FinishRollback implements update.RollbackFinisher: after the rollback's reboot the device must
// run the slot it ran before the install; that slot is marked good and active, so that GRUB's
// try of this boot is confirmed and the next boot comes here again rather than to no slot that
// is good and untried. In the installed slot again, nothing is marked and it says so.
func (i *Installer) FinishRollback(ctx context.Context, a *update.Artifact) error {
	c, err := i.connect(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	booted, installed, err := c.booted(ctx, a)
	if err != nil {
		return err
	}
	if installed {
		return public.Errorf(public.Unavailable, "the device booted the installed slot %s (%s) again: the bootloader did not fall back", a.Data[update.DataSlot], booted)
	}
	if _, err := c.mark(ctx, "good", "booted"); err != nil {
		return raucErr("cannot mark the booted slot good", err)
	}
	if _, err := c.mark(ctx, "active", "booted"); err != nil {
		return raucErr("cannot make the booted slot active", err)
	}
	return nil
}

var _ update.RollbackFinisher = (*Installer)(nil)

// Cleanup implements update.Installer; RAUC leaves nothing of the agent's behind.
func (i *Installer) Cleanup(context.Context, *update.Artifact) {}

// Status is RAUC's view of the device, for `rampart-agent status`.
type Status struct {
	Bus        string `json:"bus"`
	Operation  string `json:"operation,omitempty"`
	BootedSlot string `json:"booted_slot,omitempty"`
	Compatible string `json:"compatible,omitempty"`
	Slots      []Slot `json:"slots,omitempty"`
	// Error says why RAUC could not be asked.
	Error string `json:"error,omitempty"`
}

// Status asks RAUC for its slots; it changes nothing.
func (i *Installer) Status(ctx context.Context) Status {
	st := Status{Bus: i.cfg.Bus}
	c, err := i.connect(ctx)
	if err != nil {
		st.Error = publicText(err)
		return st
	}
	defer c.close()
	st.Operation, _ = c.stringProp(ctx, "Operation")
	st.BootedSlot, _ = c.stringProp(ctx, "BootSlot")
	st.Compatible, _ = c.stringProp(ctx, "Compatible")
	if st.Slots, err = c.slots(ctx); err != nil {
		st.Error = dbusText(err)
	}
	return st
}

// raucErr is a failed call to RAUC: what failed, with RAUC's own words.
func raucErr(what string, err error) error {
	return public.Errorf(public.Unavailable, "%s: %s", what, dbusText(err))
}

// dbusText is a D-Bus error's message (RAUC's sentence) rather than its Go wrapping.
func dbusText(err error) string {
	var de dbus.Error
	if errors.As(err, &de) {
		if len(de.Body) > 0 {
			if s, ok := de.Body[0].(string); ok {
				return s
			}
		}
		return de.Name
	}
	var dp *dbus.Error
	if errors.As(err, &dp) && dp != nil && len(dp.Body) > 0 {
		if s, ok := dp.Body[0].(string); ok {
			return s
		}
	}
	return err.Error()
}

func publicText(err error) string {
	if msg, ok := public.Message(err); ok {
		return msg
	}
	return err.Error()
}
