package update

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

// Installer installs a verified image with the device's own update mechanism: RAUC over D-Bus
// (internal/agent/rauc) or a Mender update module (internal/agent/module). The directory type
// is the Updater's own A/B slot folders (Slots) and has no Installer.
//
// The Updater calls the steps in order and journals each before it calls it, so that after a
// power cut or a reboot it knows where it was: Install; then, when Install asked for one, Reboot
// (which on a real device does not come back: the device restarts and the agent with it);
// Verify in the next boot (or right after Install); the health check; Commit, or Rollback with a
// reason; Cleanup after any end. Every method is bounded by its context.
type Installer interface {
	// Type is the image type it installs (deviceapi.ImageTypeRAUC, or
	// deviceapi.ImageTypeModulePrefix followed by the module's name).
	Type() string
	// Install installs the verified file a.Path and says whether the device must reboot to run
	// it. What later steps need (slot names) goes into a.Data, which the journal keeps.
	Install(ctx context.Context, a *Artifact) (reboot bool, err error)
	// Reboot restarts the device into what was installed.
	Reboot(ctx context.Context, a *Artifact) error
	// Verify says whether the device runs what was installed; after a reboot that landed in the
	// old slot it fails, saying so.
	Verify(ctx context.Context, a *Artifact) error
	// Commit makes what was installed permanent (RAUC: mark the booted slot good).
	Commit(ctx context.Context, a *Artifact) error
	// Rollback abandons what was installed, before or after its reboot, and says whether the
	// device must reboot to run the old software again.
	Rollback(ctx context.Context, a *Artifact, reason string) (reboot bool, err error)
	// Cleanup removes what the install left behind, after any end; it never fails the install.
	Cleanup(ctx context.Context, a *Artifact)
}

// RollbackFinisher is an Installer with work to do once a rollback's reboot has come, in the
// old software: RAUC marks the slot the bootloader fell back to good, since GRUB counted that
// boot as a try of it, like any boot that no one confirmed. It fails, saying so, when the
// device did not come back to the old software; the rollback is reported with that reason.
type RollbackFinisher interface {
	FinishRollback(ctx context.Context, a *Artifact) error
}

// Artifact is one verified image being installed by an Installer, as the journal keeps it.
type Artifact struct {
	Type             string `json:"type"`
	Component        string `json:"component"`
	Release          string `json:"release"`
	Version          string `json:"version"`
	SecurityVersion  uint64 `json:"security_version"`
	SHA256           string `json:"sha256"`
	Length           int64  `json:"length"`
	RAUCManifestHash string `json:"rauc_manifest_hash,omitempty"`
	// Path is the verified file (the signed length and SHA-256 were checked).
	Path string `json:"path"`
	// WorkDir is a folder of this install for the installer's own files (a module's file tree).
	WorkDir string `json:"work_dir"`
	// Data is what the installer keeps between its steps (RAUC: the slot booted before and
	// the slot installed).
	Data map[string]string `json:"data,omitempty"`
}

// Journal phases.
const (
	PhaseInstalling  = "installing"   // Install was called and has not returned
	PhaseRebooting   = "rebooting"    // installed; the device reboots into it
	PhaseInstalled   = "installed"    // installed, no reboot needed; verify and commit next
	PhaseCommitting  = "committing"   // Commit was called
	PhaseRollingBack = "rolling-back" // Rollback asked for a reboot into the old software
)

const (
	journalFile   = "install.json"
	journalFormat = 1
	// maxReboots is how many times the agent asks for the same reboot, in the same boot, before
	// it gives up and rolls back.
	maxReboots = 3
)

// Journal is the durable install state of the installers (install.json in the update state
// folder), replaced atomically on every change through the updater's FS. Besides the step of
// the install under way it keeps what the installers committed, which the anti-rollback checks
// and the committed report read, like SlotState does for the directory slots.
type Journal struct {
	Format int    `json:"format"`
	Phase  string `json:"phase,omitempty"`
	// Artifact is the install under way; nil when Phase is empty.
	Artifact *Artifact `json:"artifact,omitempty"`
	// BootID is the boot in which the reboot was asked (PhaseRebooting, PhaseRollingBack): the
	// same boot ID later means the device has not rebooted yet.
	BootID  string `json:"boot_id,omitempty"`
	Reboots int    `json:"reboots,omitempty"`
	// Reason is why a rollback is under way.
	Reason string `json:"reason,omitempty"`
	// Interrupted marks a rollback of an install that a power cut stopped: it ends reported
	// interrupted, not rolled back, and the release is tried again.
	Interrupted bool `json:"interrupted,omitempty"`
	// Release and Components are what the installers last committed.
	Release    string                    `json:"release,omitempty"`
	Components map[string]ComponentImage `json:"components,omitempty"`
	// Installer is the type of the installer that committed Release.
	Installer     string            `json:"installer,omitempty"`
	SecurityFloor map[string]uint64 `json:"security_floor,omitempty"`
	// FailedSet is the image set last rolled back, not installed again until another comes.
	FailedSet string `json:"failed_set,omitempty"`
	// LastFailure says why the last install through an installer failed or rolled back.
	LastFailure string `json:"last_failure,omitempty"`
	// Unreported is a committed release whose report the server has not taken yet.
	Unreported string `json:"unreported,omitempty"`
}

// ReadJournal reads the installers' journal under the update state folder without changing
// anything (for `rampart-agent status`); a missing file is an empty journal.
func ReadJournal(stateDir string) (Journal, error) {
	return readJournal(OSFS{}, stateDir)
}

func readJournal(fsys FS, stateDir string) (Journal, error) {
	b, err := readFile(fsys, filepath.Join(stateDir, journalFile), maxStateSize)
	if errors.Is(err, os.ErrNotExist) {
		return Journal{Format: journalFormat}, nil
	}
	if err != nil {
		return Journal{}, public.Errorf(public.Unavailable, "cannot read the install journal: %w", err)
	}
	var j Journal
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Journal{}, public.Errorf(public.Unavailable, "the install journal is damaged: %w", err)
	}
	if j.Format != journalFormat {
		return Journal{}, public.Errorf(public.Unavailable, "the install journal has format %d, which this agent does not read; install a newer agent", j.Format)
	}
	return j, nil
}

func (u *Updater) journal() (Journal, error) { return readJournal(u.cfg.Slots.fs, u.cfg.StateDir) }

func (u *Updater) saveJournal(j Journal) error {
	j.Format = journalFormat
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := u.cfg.Slots.fs.MkdirAll(u.cfg.StateDir, 0o700); err != nil {
		return public.Errorf(public.Unavailable, "cannot save the install journal: %w", err)
	}
	if err := writeFileAtomic(u.cfg.Slots.fs, filepath.Join(u.cfg.StateDir, journalFile), b); err != nil {
		return public.Errorf(public.Unavailable, "cannot save the install journal: %w", err)
	}
	return nil
}

// ErrNoInstaller means the director named an image of a type this agent has no installer for.
var ErrNoInstaller = errors.New("no installer for this image type")

// external reports whether want holds images for an Installer, and refuses what the agent
// cannot install: a type without an installer, or a release that mixes types or holds more than
// one image for an installer.
func (u *Updater) external(want []wanted) (bool, error) {
	if len(want) == 0 {
		return false, nil
	}
	types := map[string]bool{}
	for _, w := range want {
		types[w.custom.ImageType()] = true
	}
	if len(types) == 1 && types[deviceapi.ImageTypeDirectory] {
		return false, nil
	}
	if len(types) > 1 {
		return true, fmt.Errorf("%w: the release mixes image types (%s); an agent installs one type per release",
			ErrNoInstaller, strings.Join(sortedKeys(types), ", "))
	}
	if len(want) != 1 {
		return true, fmt.Errorf("%w: the release holds %d %s images; an agent installs one per release", ErrNoInstaller, len(want), want[0].custom.ImageType())
	}
	t := want[0].custom.ImageType()
	if u.installer(t) == nil {
		have := []string{deviceapi.ImageTypeDirectory}
		for _, in := range u.cfg.Installers {
			have = append(have, in.Type())
		}
		return true, fmt.Errorf("%w: this agent cannot install %s images (it installs %s)", ErrNoInstaller, t, strings.Join(have, ", "))
	}
	return true, nil
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

func (u *Updater) installer(t string) Installer {
	for _, in := range u.cfg.Installers {
		if in.Type() == t {
			return in
		}
	}
	return nil
}

// installExternal downloads the one image and hands it to its installer.
func (u *Updater) installExternal(ctx context.Context, want []wanted, release string, out Outcome) (Outcome, error) {
	j, err := u.journal()
	if err != nil {
		return out, err
	}
	if j.Phase != "" {
		return out, ErrTrialPending
	}
	w := want[0]
	cur := &SlotInfo{Release: j.Release, Components: j.Components}
	changed, err := u.changes(want, cur, j.SecurityFloor)
	if err != nil {
		return out, err
	}
	if len(changed) == 0 {
		return out, nil
	}
	next := SlotInfo{Components: maps.Clone(j.Components)}
	if next.Components == nil {
		next.Components = map[string]ComponentImage{}
	}
	next.Components[w.name] = w.image()
	if j.FailedSet != "" && next.Fingerprint() == j.FailedSet {
		return out, public.Errorf(public.Unavailable, "release %s: %w", release, ErrPreviouslyFailed)
	}
	inst := u.installer(w.custom.ImageType())
	u.report(ctx, Status{State: StateDownloading, Release: release})
	// An installer takes the whole image: deltas patch the agent's own slot folders only.
	path, err := u.fetchImage(ctx, w)
	if err != nil {
		return out, public.Errorf(public.Unavailable, "component %s: %w", w.name, err)
	}
	img := w.image()
	a := &Artifact{Type: inst.Type(), Component: w.name, Release: release, Version: img.Version, SecurityVersion: img.SecurityVersion,
		SHA256: img.SHA256, Length: img.Length, RAUCManifestHash: w.custom.RAUCManifestHash, Path: path,
		WorkDir: filepath.Join(u.cfg.Slots.dir, stagingDir, "work-"+img.SHA256[:16]), Data: map[string]string{DataCurrentRelease: j.Release}}
	j.Phase, j.Artifact, j.BootID, j.Reboots, j.Reason = PhaseInstalling, a, "", 0, ""
	if err := u.saveJournal(j); err != nil {
		return out, err
	}
	u.report(ctx, Status{State: StateInstalling, Release: release})
	u.log.Info("installing", "installer", inst.Type(), "release", release, "component", w.name)
	reboot, ierr := inst.Install(ctx, a)
	if ierr != nil {
		// The installer refused or failed: abandon it (a module's ArtifactRollback and
		// ArtifactFailure) and report the release failed.
		reason := "install failed: " + publicText(ierr)
		if _, rerr := inst.Rollback(ctx, a, reason); rerr != nil {
			reason += "; rollback: " + publicText(rerr)
		}
		inst.Cleanup(ctx, a)
		_ = u.cfg.Slots.fs.Remove(path)
		j.Phase, j.Artifact, j.LastFailure = "", nil, reason
		if !errors.Is(ierr, ErrInstallerUnavailable) {
			j.FailedSet = next.Fingerprint()
		}
		if err := u.saveJournal(j); err != nil {
			return out, errors.Join(ierr, err)
		}
		return out, fmt.Errorf("%w: %w", errInstallFailed, public.Errorf(public.Unavailable, "%s installer: %w", inst.Type(), ierr))
	}
	out.Installed, out.Installer = true, inst.Type()
	if reboot {
		j.Phase, j.BootID = PhaseRebooting, u.cfg.BootID
	} else {
		j.Phase = PhaseInstalled
	}
	if err := u.saveJournal(j); err != nil {
		return out, err
	}
	u.report(ctx, Status{State: StateInstalled, Release: release, Slot: a.Data[DataSlot]})
	if !reboot {
		o, err := u.Resume(ctx)
		o.Installed, o.Installer = true, inst.Type()
		return o, err
	}
	return u.reboot(ctx, j, out)
}

// DataCurrentRelease is the Artifact.Data key holding the release the installers committed
// before this install ("" on a device that has only run directory releases).
const DataCurrentRelease = "current_release"

// DataSlot is the Artifact.Data key an installer sets to the slot it installed to, which the
// reports and `rampart-agent status` show.
const DataSlot = "slot"

// ErrInstallerUnavailable marks an installer error of the device rather than of the release
// (RAUC not on the bus): the install is reported failed but the same release is tried again.
var ErrInstallerUnavailable = errors.New("the installer is not available")

// errReported marks an error whose state was already reported to the server.
var errReported = errors.New("")

// errInstallFailed marks an install an installer refused or failed: a failure of the release.
var errInstallFailed = errors.New("installer failed")

// reboot asks the installer to reboot, once more in this boot, and gives up past maxReboots.
func (u *Updater) reboot(ctx context.Context, j Journal, out Outcome) (Outcome, error) {
	a := j.Artifact
	inst := u.installer(a.Type)
	j.Reboots++
	j.BootID = u.cfg.BootID
	if j.Reboots > maxReboots {
		reason := fmt.Sprintf("the device did not reboot after %d requests", maxReboots)
		if j.Phase == PhaseRollingBack {
			// Nothing more the agent can do from the new software: say so and stop asking.
			return u.endRollback(ctx, j, out, j.Reason+"; "+reason)
		}
		return u.rollback(ctx, j, out, reason)
	}
	if err := u.saveJournal(j); err != nil {
		return out, err
	}
	state := Status{State: StateRebooting, Release: a.Release, Slot: a.Data[DataSlot]}
	if j.Phase == PhaseRollingBack {
		state.Reason = "rolling back: " + j.Reason
	}
	u.report(ctx, state)
	out.Release, out.Rebooting, out.Installer = a.Release, true, a.Type
	u.log.Info("rebooting", "installer", a.Type, "release", a.Release, "phase", j.Phase)
	if err := inst.Reboot(ctx, a); err != nil {
		return out, fmt.Errorf("reboot: %w", err)
	}
	return out, nil
}

// Resume carries an install through an installer on from where the journal says it stopped:
// after the reboot it verifies, checks health and commits or rolls back; in the boot that asked
// for a reboot that has not come it asks again; an install a power cut interrupted is abandoned
// and reported interrupted, to be tried again. With nothing under way it sends a committed
// report the server has not taken yet.
func (u *Updater) Resume(ctx context.Context) (Outcome, error) {
	j, err := u.journal()
	if err != nil {
		return Outcome{}, fmt.Errorf("update.Resume: %w", err)
	}
	out := Outcome{Release: j.Release}
	if j.Phase == "" {
		u.reportInstallerCommit(ctx, j)
		return out, nil
	}
	a := j.Artifact
	inst := u.installer(a.Type)
	if inst == nil {
		// The agent was restarted without the installer it began with: nothing can finish
		// the install, so it ends here, said plainly.
		reason := fmt.Sprintf("the agent no longer has the %s installer it began this install with", a.Type)
		j.Phase, j.Artifact, j.LastFailure = "", nil, reason
		if err := u.saveJournal(j); err != nil {
			return out, err
		}
		u.report(ctx, Status{State: StateFailed, Release: a.Release, Reason: reason})
		return out, fmt.Errorf("update.Resume: %w%w", errReported, public.Errorf(public.Unavailable, "%w: %s", ErrNoInstaller, reason))
	}
	out.Release, out.Installer = a.Release, a.Type
	switch j.Phase {
	case PhaseInstalling:
		// The install stopped midway (power cut, agent killed): abandon it and try again.
		reason := "the install was interrupted before it finished; it starts again"
		reboot, err := inst.Rollback(ctx, a, reason)
		if err != nil {
			u.log.Warn("abandoning the interrupted install", "err", err)
		}
		if reboot && err == nil {
			// The cut came after the installer switched slots, and the device came up in the
			// half-confirmed one: back to the old slot, then the install starts again.
			j.Phase, j.Reason, j.Reboots, j.Interrupted = PhaseRollingBack, reason, 0, true
			return u.reboot(ctx, j, out)
		}
		inst.Cleanup(ctx, a)
		j.Phase, j.Artifact = "", nil
		if err := u.saveJournal(j); err != nil {
			return out, err
		}
		u.report(ctx, Status{State: StateInterrupted, Release: a.Release, Reason: reason})
		return out, nil
	case PhaseRebooting, PhaseRollingBack:
		if j.BootID == u.cfg.BootID {
			return u.reboot(ctx, j, out)
		}
		if j.Phase == PhaseRollingBack {
			reason := j.Reason
			if f, ok := inst.(RollbackFinisher); ok {
				if err := f.FinishRollback(ctx, a); err != nil {
					reason += "; after the rollback's reboot: " + publicText(err)
				}
			}
			return u.endRollback(ctx, j, out, reason)
		}
	case PhaseCommitting:
		return u.commit(ctx, j, out)
	}
	// Rebooted (or nothing to reboot): does the device run what was installed?
	if err := inst.Verify(ctx, a); err != nil {
		return u.rollback(ctx, j, out, "after the reboot: "+publicText(err))
	}
	if u.cfg.Health != nil {
		if herr := u.cfg.Health(ctx, Boot{Slot: a.Data[DataSlot], Trial: true, Info: SlotInfo{Release: a.Release,
			Components: map[string]ComponentImage{a.Component: {Version: a.Version, SecurityVersion: a.SecurityVersion, SHA256: a.SHA256, Length: a.Length}}}}); herr != nil {
			return u.rollback(ctx, j, out, "health check failed: "+publicText(herr))
		}
	}
	j.Phase = PhaseCommitting
	if err := u.saveJournal(j); err != nil {
		return out, err
	}
	return u.commit(ctx, j, out)
}

// commit commits through the installer, then records the release as committed, with its floor.
func (u *Updater) commit(ctx context.Context, j Journal, out Outcome) (Outcome, error) {
	a := j.Artifact
	inst := u.installer(a.Type)
	if err := inst.Commit(ctx, a); err != nil {
		return u.rollback(ctx, j, out, "commit failed: "+publicText(err))
	}
	inst.Cleanup(ctx, a)
	if j.Components == nil {
		j.Components = map[string]ComponentImage{}
	}
	if j.SecurityFloor == nil {
		j.SecurityFloor = map[string]uint64{}
	}
	j.Components[a.Component] = ComponentImage{Version: a.Version, SecurityVersion: a.SecurityVersion, SHA256: a.SHA256, Length: a.Length}
	j.SecurityFloor[a.Component] = max(j.SecurityFloor[a.Component], a.SecurityVersion)
	j.Release, j.Installer, j.Unreported, j.FailedSet, j.LastFailure = a.Release, a.Type, a.Release, "", ""
	j.Phase, j.Artifact, j.BootID, j.Reboots, j.Reason = "", nil, "", 0, ""
	if err := u.saveJournal(j); err != nil {
		return out, err
	}
	_ = u.cfg.Slots.fs.Remove(a.Path)
	u.log.Info("committed", "installer", a.Type, "release", a.Release)
	u.reportInstallerCommit(ctx, j)
	out.Committed = true
	return out, nil
}

// rollback abandons the install with reason; when the installer needs a reboot to run the old
// software again, the device reboots and the rollback ends in the next boot.
func (u *Updater) rollback(ctx context.Context, j Journal, out Outcome, reason string) (Outcome, error) {
	a := j.Artifact
	inst := u.installer(a.Type)
	u.log.Warn("rolling back", "installer", a.Type, "release", a.Release, "reason", reason)
	reboot, err := inst.Rollback(ctx, a, reason)
	if err != nil {
		reason += "; rollback: " + publicText(err)
	}
	if reboot && err == nil {
		j.Phase, j.Reason, j.Reboots = PhaseRollingBack, reason, 0
		return u.reboot(ctx, j, out)
	}
	return u.endRollback(ctx, j, out, reason)
}

// endRollback records and reports the rolled-back release.
func (u *Updater) endRollback(ctx context.Context, j Journal, out Outcome, reason string) (Outcome, error) {
	a := j.Artifact
	if inst := u.installer(a.Type); inst != nil {
		inst.Cleanup(ctx, a)
	}
	set := SlotInfo{Components: maps.Clone(j.Components)}
	if set.Components == nil {
		set.Components = map[string]ComponentImage{}
	}
	set.Components[a.Component] = ComponentImage{Version: a.Version, SecurityVersion: a.SecurityVersion, SHA256: a.SHA256, Length: a.Length}
	interrupted := j.Interrupted
	if !interrupted {
		j.FailedSet = set.Fingerprint()
	}
	j.LastFailure = reason
	j.Phase, j.Artifact, j.BootID, j.Reboots, j.Reason, j.Interrupted = "", nil, "", 0, "", false
	if err := u.saveJournal(j); err != nil {
		return out, err
	}
	_ = u.cfg.Slots.fs.Remove(a.Path)
	if interrupted {
		u.report(ctx, Status{State: StateInterrupted, Release: a.Release, Reason: reason})
		return out, nil
	}
	u.report(ctx, Status{State: StateRolledBack, Release: a.Release, Slot: a.Data[DataSlot], Reason: reason})
	out.RolledBack = reason
	return out, fmt.Errorf("update.Resume: %w%w", errReported, public.Errorf(public.Unavailable, "%w: release %s rolled back: %s", ErrUnhealthy, a.Release, reason))
}

// reportInstallerCommit sends the committed report the server has not taken yet.
func (u *Updater) reportInstallerCommit(ctx context.Context, j Journal) {
	if u.cfg.Reporter == nil || j.Unreported == "" {
		return
	}
	if err := u.cfg.Reporter.Report(ctx, Status{State: StateCommitted, Release: j.Unreported}); err != nil {
		u.log.Warn("install state report failed; sent again at the next run", "state", StateCommitted, "err", err)
		return
	}
	j.Unreported = ""
	if err := u.saveJournal(j); err != nil {
		u.log.Warn("committed report sent but not recorded; it may be sent again", "err", err)
	}
}

// publicText is the sentence of err an operator reads: its public message when it has one.
func publicText(err error) string {
	if msg, ok := public.Message(err); ok {
		return msg
	}
	return err.Error()
}

// LastLine is the last non-empty line of a command's output (an installer, a module, the health
// check), at most max bytes: what a failure reports as its reason.
func LastLine(out []byte, max int) string {
	s := strings.TrimSpace(string(out))
	if k := strings.LastIndexByte(s, '\n'); k >= 0 {
		s = s[k+1:]
	}
	if len(s) > max {
		s = s[:max]
	}
	return s
}
