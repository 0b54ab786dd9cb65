// Package update is the device agent's updater: it refreshes the image
// repository's TUF metadata and the device's director metadata with
// go-tuf's client, installs only images that both name with the same
// length and hashes, downloads them with resume and strict limits (delta
// first, full image as fallback), writes the inactive A/B slot, switches,
// trial-boots, and commits after a health check or rolls back.
//
// It is imported by the agent's packages and by the fleet simulator
// (internal/sim), which runs real agents, and must stay free of database,
// web-server and server-side signing code (a test guards its dependencies).
package update

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/delta"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// Sentinel errors; every refusal wraps one of them.
var (
	// ErrMetadata means TUF or director metadata was refused (bad
	// signature, rollback, expiry, mix-and-match, wrong device).
	ErrMetadata = errors.New("signed metadata refused")
	// ErrDirectorMismatch means the director named an image the image
	// repository did not sign with the same length, hashes and attributes.
	ErrDirectorMismatch = errors.New("the director and the image repository disagree")
	// ErrRollback means the named release is older than the committed one.
	ErrRollback = errors.New("refusing to install an older release")
	// ErrVerification means downloaded bytes did not match the signed hash.
	ErrVerification = errors.New("downloaded data does not match the signed hash")
	// ErrTooLarge means a download exceeded its signed or configured size.
	ErrTooLarge = errors.New("download exceeds its size limit")
	// ErrSlowRetrieval means a download moved too slowly.
	ErrSlowRetrieval = errors.New("download too slow")
	// ErrUnhealthy means the trial slot failed its health check.
	ErrUnhealthy = errors.New("health check failed")
	// ErrPreviouslyFailed means the director names exactly the image set
	// that was just rolled back; it is not installed again until the
	// director names another set.
	ErrPreviouslyFailed = errors.New("this image set was rolled back; waiting for another release")
)

// InstallState is what the agent reports to the server.
type InstallState = deviceapi.InstallState

// Install states, in order of a successful update.
const (
	StateDownloading = deviceapi.InstallDownloading
	StateInstalling  = deviceapi.InstallInstalling
	StateInstalled   = deviceapi.InstallInstalled
	StateCommitted   = deviceapi.InstallCommitted
	StateFailed      = deviceapi.InstallFailed
	StateInterrupted = deviceapi.InstallInterrupted
	StateRebooting   = deviceapi.InstallRebooting
	StateRolledBack  = deviceapi.InstallRolledBack
)

// Interrupted reports whether an install error is an interruption rather than a failure of
// the release: anything but a refusal of the release's metadata or data (ErrMetadata,
// ErrDirectorMismatch, ErrRollback, ErrVerification, ErrTooLarge, ErrPreviouslyFailed) or a
// failed trial boot (ErrUnhealthy).
func Interrupted(err error) bool {
	for _, refusal := range []error{ErrMetadata, ErrDirectorMismatch, ErrRollback, ErrVerification, ErrTooLarge,
		ErrPreviouslyFailed, ErrUnhealthy, ErrNoInstaller, errInstallFailed} {
		if errors.Is(err, refusal) {
			return false
		}
	}
	return err != nil
}

// Status is one install state report.
type Status struct {
	State   InstallState `json:"state"`
	Release string       `json:"release,omitempty"`
	Slot    string       `json:"slot,omitempty"`
	Reason  string       `json:"reason,omitempty"`
}

// Reporter sends install states to the server (the device API).
type Reporter interface {
	Report(ctx context.Context, s Status) error
}

// HealthFunc checks a freshly booted trial slot before it is committed.
type HealthFunc func(ctx context.Context, b Boot) error

// Config configures an Updater.
type Config struct {
	// DeviceID is the device's ID; director entries for another device are refused.
	DeviceID string
	// RepoURL is the image repository: metadata under RepoURL/metadata/,
	// images and deltas under RepoURL/targets/<target path>.
	RepoURL string
	// DirectorURL is this device's director metadata directory.
	DirectorURL string
	// RepoRoot and DirectorRoot are the pinned bootstrap roots, used until
	// a newer verified root is cached under StateDir.
	RepoRoot     []byte
	DirectorRoot []byte
	// StateDir caches verified metadata (repo/ and director/).
	StateDir string
	Slots    *Slots
	// HTTPClient defaults to a client without overall timeout (the rate
	// watchdog bounds transfers).
	HTTPClient *http.Client
	Limits     Limits
	Reporter   Reporter
	Health     HealthFunc
	Logger     *slog.Logger
	// Now, when set, replaces the clock used for metadata expiry. Only
	// tests set it (to let time pass); the agent leaves it nil.
	Now func() time.Time
	// Installers install the image types other than directory (RAUC, update modules); an
	// image of a type none of them installs is refused and reported failed.
	Installers []Installer
	// BootID identifies the running boot; an installer's reboot is confirmed by a new one.
	BootID string
	// Decoders, when set, lends the patches' decoders (delta.Decoders): the simulator shares
	// one among its devices. The agent leaves it nil and makes one per patch.
	Decoders *delta.Decoders
}

// Updater runs the device side of an update.
type Updater struct {
	cfg Config
	dl  *downloader
	log *slog.Logger
	// repoTUF and dirTUF are the metadata the last check-in verified (see client). An
	// Updater runs one check-in at a time.
	repoTUF, dirTUF *tufCache
}

// New checks cfg and returns an Updater.
func New(cfg Config) (*Updater, error) {
	if cfg.Slots == nil || cfg.RepoURL == "" || cfg.DirectorURL == "" || len(cfg.RepoRoot) == 0 || len(cfg.DirectorRoot) == 0 || cfg.StateDir == "" {
		return nil, fmt.Errorf("update.New: slots, URLs, roots and state dir are required")
	}
	if cfg.DeviceID == "" {
		return nil, fmt.Errorf("update.New: device id is required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	return &Updater{
		cfg: cfg,
		dl:  &downloader{fs: cfg.Slots.fs, client: cfg.HTTPClient, limits: cfg.Limits},
		log: cfg.Logger,
	}, nil
}

// Adopt takes over the repositories' verified metadata that prev, an earlier Updater of the same
// device (same URLs, roots and state folder), kept between check-ins (see client), so that the
// next check-in starts from it rather than from disk. The agent does so when it reopens its
// identity and HTTP client without restarting: the reboot a software attester simulates. prev
// must not be used afterwards.
func (u *Updater) Adopt(prev *Updater) {
	if prev == nil || prev.cfg.RepoURL != u.cfg.RepoURL || prev.cfg.DirectorURL != u.cfg.DirectorURL || prev.cfg.StateDir != u.cfg.StateDir ||
		string(prev.cfg.RepoRoot) != string(u.cfg.RepoRoot) || string(prev.cfg.DirectorRoot) != string(u.cfg.DirectorRoot) {
		return
	}
	for _, c := range []struct{ dst, src **tufCache }{{&u.repoTUF, &prev.repoTUF}, {&u.dirTUF, &prev.dirTUF}} {
		if kept := *c.src; kept != nil {
			// go-tuf's updater holds the same fetcher, so it downloads through the new client too.
			kept.fetch.client, kept.fetch.limits = u.cfg.HTTPClient, u.cfg.Limits
			*c.dst, *c.src = kept, nil
		}
	}
}

// Outcome summarises one update run.
type Outcome struct {
	// Release is the release installed or already running.
	Release string `json:"release,omitempty"`
	// Installed is true when a new slot was written and switched to.
	Installed bool `json:"installed"`
	// Committed is true when the new slot passed its health check.
	Committed bool `json:"committed"`
	// Delta lists components installed from a patch.
	Delta []string `json:"delta,omitempty"`
	// RolledBack explains an automatic rollback.
	RolledBack string `json:"rolled_back,omitempty"`
	// Installer is the type of the installer that handled the release; "" for the agent's own
	// directory slots.
	Installer string `json:"installer,omitempty"`
	// Rebooting is true when the installer asked the device to reboot into the release.
	Rebooting bool `json:"rebooting,omitempty"`
}

func (u *Updater) report(ctx context.Context, s Status) {
	if u.cfg.Reporter == nil {
		return
	}
	if err := u.cfg.Reporter.Report(ctx, s); err != nil {
		u.log.Warn("install state report failed", "state", s.State, "err", err)
	}
}

// RunOnce finishes a pending trial boot, then checks for an update and,
// when one is named, installs it, boots it as a trial and commits it after
// the health check (or rolls back). Refusals are reported as failed and
// returned; the committed slot is never touched.
func (u *Updater) RunOnce(ctx context.Context) (Outcome, error) {
	// An install through an installer (RAUC, a module) goes on first: after its reboot it is
	// verified and committed or rolled back before anything new is looked at.
	if out, err := u.Resume(ctx); err != nil || out.Rebooting || out.Committed || out.RolledBack != "" {
		return out, err
	}
	if _, err := u.FinishBoot(ctx); err != nil && !errors.Is(err, ErrUnhealthy) {
		return Outcome{}, err
	}
	out, err := u.Install(ctx)
	if err != nil || !out.Installed || out.Installer != "" {
		return out, err
	}
	b, err := u.FinishBoot(ctx)
	out.Committed = err == nil && !b.Trial && b.RolledBack == "" && b.Info.Release == out.Release
	out.RolledBack = b.RolledBack
	return out, err
}

// FinishBoot boots the slots (counting a trial boot, rolling back past the
// limit) and, on a trial slot, runs the health check and commits or rolls
// back. It returns the slot running afterwards.
func (u *Updater) FinishBoot(ctx context.Context) (Boot, error) {
	st, err := u.cfg.Slots.State()
	if err != nil {
		return Boot{}, fmt.Errorf("update.FinishBoot: %w", err)
	}
	if st.Committed == "" && st.Trial == "" {
		// A blank device: nothing to boot yet, the first install goes to slot a.
		return Boot{}, nil
	}
	b, err := u.cfg.Slots.Boot()
	if b.RolledBackRelease != "" {
		// The trial never passed its health check: a failure of the trial's release, not of
		// the slot booted now.
		u.report(ctx, Status{State: StateFailed, Release: b.RolledBackRelease, Reason: b.RolledBack})
	}
	if err != nil {
		return b, fmt.Errorf("update.FinishBoot: %w", err)
	}
	if !b.Trial {
		u.reportCommit(ctx)
		return b, nil
	}
	if u.cfg.Health != nil {
		if herr := u.cfg.Health(ctx, b); herr != nil {
			reason := "health check failed: " + herr.Error()
			if err := u.cfg.Slots.Rollback(reason); err != nil {
				return b, fmt.Errorf("update.FinishBoot: %w", err)
			}
			u.report(ctx, Status{State: StateFailed, Release: b.Info.Release, Slot: b.Slot, Reason: reason})
			after, err := u.cfg.Slots.Boot()
			after.RolledBack = reason
			if err != nil {
				return after, fmt.Errorf("update.FinishBoot: %w", err)
			}
			return after, fmt.Errorf("update.FinishBoot: %w", public.Errorf(public.Unavailable, "%w: %w", ErrUnhealthy, herr))
		}
	}
	if err := u.cfg.Slots.Commit(); err != nil {
		return b, fmt.Errorf("update.FinishBoot: %w", err)
	}
	u.reportCommit(ctx)
	b.Trial = false
	return b, nil
}

// reportCommit reports the commit the server has not taken yet (SlotState.Unreported) and then
// forgets it. A report that fails (the connection dropped, or power went between the commit and
// the report) is sent again at the next run: without it the server would never learn the
// device's release, and the device would stay pending in its deployment.
func (u *Updater) reportCommit(ctx context.Context) {
	if u.cfg.Reporter == nil {
		return
	}
	st, err := u.cfg.Slots.State()
	if err != nil || st.Unreported == "" {
		return
	}
	s := Status{State: StateCommitted, Release: st.Unreported}
	if info := st.Slots[st.Committed]; info != nil && info.Release == st.Unreported {
		s.Slot = st.Committed
	}
	if err := u.cfg.Reporter.Report(ctx, s); err != nil {
		u.log.Warn("install state report failed; sent again at the next run", "state", s.State, "err", err)
		return
	}
	if err := u.cfg.Slots.Reported(s.Release); err != nil {
		u.log.Warn("committed report sent but not recorded; it may be sent again", "err", err)
	}
}

// wanted is one image the director and the image repository agree on.
type wanted struct {
	name   string
	custom deviceapi.ImageCustom // from the image repository
	target *metadata.TargetFiles // from the image repository
}

func (w wanted) image() ComponentImage {
	return ComponentImage{
		Version: w.custom.Version, SecurityVersion: w.custom.SecurityVersion,
		SHA256: hex.EncodeToString(w.target.Hashes["sha256"]), Length: w.target.Length,
	}
}

// Install refreshes metadata and, when the director names images that
// differ from the committed slot, downloads, writes and switches to them.
func (u *Updater) Install(ctx context.Context) (Outcome, error) {
	out, err := u.install(ctx)
	if errors.Is(err, errReported) {
		return out, fmt.Errorf("update.Install: %w", err)
	}
	if err != nil {
		state := StateFailed
		if Interrupted(err) {
			state = StateInterrupted
		}
		// The reason an operator reads in `rampart deployment show`, and the agent's last line,
		// is the public sentence install's errors compose: what failed, with no function
		// names. The operation's name is added for the log only.
		err = public.Errorf(public.Unavailable, "%w", err)
		reason, _ := public.Message(err)
		u.report(ctx, Status{State: state, Release: out.Release, Reason: reason})
		return out, fmt.Errorf("update.Install: %w", err)
	}
	return out, nil
}

func (u *Updater) install(ctx context.Context) (Outcome, error) {
	repo, err := u.client(ctx, "repo", u.cfg.RepoURL+"/metadata", u.cfg.RepoRoot, &u.repoTUF)
	if err != nil {
		return Outcome{}, public.Errorf(public.Unavailable, "image repository: %w", err)
	}
	dir, err := u.client(ctx, "director", u.cfg.DirectorURL, u.cfg.DirectorRoot, &u.dirTUF)
	if err != nil {
		return Outcome{}, public.Errorf(public.Unavailable, "director: %w", err)
	}
	want, release, err := u.agree(repo, dir)
	if err != nil {
		return Outcome{Release: release}, err
	}
	out := Outcome{Release: release}
	if ext, err := u.external(want); err != nil {
		return out, err
	} else if ext {
		return u.installExternal(ctx, want, release, out)
	}
	st, err := u.cfg.Slots.State()
	if err != nil {
		return out, err
	}
	if st.Trial != "" {
		return out, ErrTrialPending
	}
	var cur *SlotInfo
	if st.Committed != "" {
		cur = st.Slots[st.Committed]
	}
	changed, err := u.changes(want, cur, st.SecurityFloor)
	if err != nil {
		return out, err
	}
	if len(changed) == 0 {
		return out, nil
	}
	next := SlotInfo{Components: map[string]ComponentImage{}}
	if cur != nil {
		maps.Copy(next.Components, cur.Components)
	}
	for _, w := range want {
		next.Components[w.name] = w.image()
	}
	if st.FailedSet != "" && next.Fingerprint() == st.FailedSet {
		return out, public.Errorf(public.Unavailable, "release %s: %w", release, ErrPreviouslyFailed)
	}
	u.report(ctx, Status{State: StateDownloading, Release: release})
	patches := map[string]string{} // component -> verified patch file
	full := map[string]string{}    // component -> verified image file
	for _, w := range changed {
		if p, ok := u.fetchDelta(ctx, repo, w, cur); ok {
			patches[w.name] = p
			continue
		}
		p, err := u.fetchImage(ctx, w)
		if err != nil {
			return out, public.Errorf(public.Unavailable, "component %s: %w", w.name, err)
		}
		full[w.name] = p
	}

	u.report(ctx, Status{State: StateInstalling, Release: release})
	slot, err := u.cfg.Slots.BeginInstall()
	if err != nil {
		return out, err
	}
	info := SlotInfo{Release: release, Components: map[string]ComponentImage{}}
	if cur != nil {
		for name, c := range cur.Components {
			info.Components[name] = c
		}
	}
	for _, w := range want {
		info.Components[w.name] = w.image()
	}
	for name, c := range info.Components {
		if p, ok := patches[name]; ok {
			err := u.applyDelta(ctx, slot, name, c, st.Committed, cur.Components[name], p)
			if err == nil {
				out.Delta = append(out.Delta, name)
				continue
			}
			u.log.Warn("delta failed, falling back to the full image", "component", name, "err", err)
			w := want[slices.IndexFunc(want, func(w wanted) bool { return w.name == name })]
			if full[name], err = u.fetchImage(ctx, w); err != nil {
				return out, public.Errorf(public.Unavailable, "component %s: %w", name, err)
			}
		}
		if p, ok := full[name]; ok {
			if err := u.cfg.Slots.PlaceComponent(slot, name, p); err != nil {
				return out, err
			}
			continue
		}
		// Unchanged: copy from the committed slot.
		err := u.cfg.Slots.WriteComponent(slot, name, c, func(w io.Writer) error {
			f, err := u.cfg.Slots.fs.OpenFile(u.cfg.Slots.ComponentPath(st.Committed, name), os.O_RDONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(w, f)
			return err
		})
		if err != nil {
			return out, err
		}
	}
	if err := u.cfg.Slots.Switch(slot, info); err != nil {
		return out, err
	}
	for _, p := range patches {
		_ = u.cfg.Slots.fs.Remove(p)
	}
	slices.Sort(out.Delta)
	out.Installed = true
	u.report(ctx, Status{State: StateInstalled, Release: release, Slot: slot})
	return out, nil
}

// agree returns the images the director names for this device, each
// checked against the image repository's signed target.
func (u *Updater) agree(repo, dir tufView) ([]wanted, string, error) {
	var out []wanted
	release := ""
	seen := map[string]bool{}
	for path, dt := range dir.GetTopLevelTargets() {
		dc, err := deviceapi.ParseImageCustom(dt)
		if err != nil {
			return nil, "", fmt.Errorf("%w: director target %s: %w", ErrMetadata, path, err)
		}
		if dc.Device != u.cfg.DeviceID {
			return nil, "", fmt.Errorf("%w: director target %s is for device %q", ErrMetadata, path, dc.Device)
		}
		if release != "" && dc.Release != release {
			return nil, "", fmt.Errorf("%w: director mixes releases %q and %q", ErrMetadata, release, dc.Release)
		}
		release = dc.Release
		rt, err := repo.GetTargetInfo(path)
		if err != nil {
			return nil, release, fmt.Errorf("%w: %s is not signed by the image repository: %w", ErrDirectorMismatch, path, err)
		}
		sum, ok := rt.Hashes["sha256"]
		if !ok || path != deviceapi.ImagePath(hex.EncodeToString(sum)) {
			return nil, release, fmt.Errorf("%w: %s is not content-addressed", ErrDirectorMismatch, path)
		}
		if rt.Length != dt.Length || len(dt.Hashes) == 0 {
			return nil, release, fmt.Errorf("%w: %s length %d, director says %d", ErrDirectorMismatch, path, rt.Length, dt.Length)
		}
		for alg, h := range dt.Hashes {
			if rh, ok := rt.Hashes[alg]; !ok || string(rh) != string(h) {
				return nil, release, fmt.Errorf("%w: %s %s hash differs", ErrDirectorMismatch, path, alg)
			}
		}
		rc, err := deviceapi.ParseImageCustom(rt)
		if err != nil {
			return nil, release, fmt.Errorf("%w: %s: %w", ErrMetadata, path, err)
		}
		if rc.Component != dc.Component || rc.Version != dc.Version || rc.SecurityVersion != dc.SecurityVersion ||
			rc.Type != dc.Type || rc.RAUCManifestHash != dc.RAUCManifestHash {
			return nil, release, fmt.Errorf("%w: %s attributes differ", ErrDirectorMismatch, path)
		}
		if rt.Length > u.cfg.Limits.MaxImageSize {
			return nil, release, fmt.Errorf("%s: %w: %d bytes", path, ErrTooLarge, rt.Length)
		}
		if seen[rc.Component] {
			return nil, release, fmt.Errorf("%w: component %s named twice", ErrMetadata, rc.Component)
		}
		seen[rc.Component] = true
		out = append(out, wanted{name: rc.Component, custom: rc, target: rt})
	}
	slices.SortFunc(out, func(a, b wanted) int { return strings.Compare(a.name, b.name) })
	return out, release, nil
}

// changes returns the wanted images that differ from the committed slot,
// refusing any that would lower a component's version or security version.
func (u *Updater) changes(want []wanted, cur *SlotInfo, floor map[string]uint64) ([]wanted, error) {
	var out []wanted
	for _, w := range want {
		img := w.image()
		if w.custom.SecurityVersion < floor[w.name] {
			return nil, fmt.Errorf("%w: %s security version %d is below %d", ErrRollback, w.name, w.custom.SecurityVersion, floor[w.name])
		}
		if cur != nil {
			if c, ok := cur.Components[w.name]; ok {
				if c.SHA256 == img.SHA256 {
					continue
				}
				cmp, err := deviceapi.CompareVersions(img.Version, c.Version)
				if err != nil {
					return nil, fmt.Errorf("%w: %w", ErrMetadata, err)
				}
				if cmp <= 0 {
					return nil, fmt.Errorf("%w: %s %s is not newer than the committed %s", ErrRollback, w.name, img.Version, c.Version)
				}
				if img.SecurityVersion < c.SecurityVersion {
					return nil, fmt.Errorf("%w: %s security version %d is below the committed %d", ErrRollback, w.name, img.SecurityVersion, c.SecurityVersion)
				}
			}
		}
		out = append(out, w)
	}
	return out, nil
}

func (u *Updater) targetURL(path string) string {
	return u.cfg.RepoURL + "/targets/" + path
}

func (u *Updater) staging(name string) string {
	return filepath.Join(u.cfg.Slots.dir, stagingDir, name)
}

func (u *Updater) fetchImage(ctx context.Context, w wanted) (string, error) {
	sum := w.target.Hashes["sha256"]
	part := u.staging(hex.EncodeToString(sum) + ".part")
	if err := u.dl.fetch(ctx, u.targetURL(w.target.Path), part, w.target.Length, sum); err != nil {
		return "", err
	}
	return part, nil
}

// fetchDelta downloads the signed patch from the committed image, if the
// image repository lists one. Any failure means "use the full image".
func (u *Updater) fetchDelta(ctx context.Context, repo tufView, w wanted, cur *SlotInfo) (string, bool) {
	if cur == nil {
		return "", false
	}
	c, ok := cur.Components[w.name]
	if !ok {
		return "", false
	}
	i := slices.IndexFunc(w.custom.Deltas, func(r deviceapi.DeltaRef) bool { return r.From == c.SHA256 })
	if i < 0 {
		return "", false
	}
	ref := w.custom.Deltas[i]
	dt, err := repo.GetTargetInfo(ref.Path)
	if err != nil {
		u.log.Warn("delta not signed", "path", ref.Path, "err", err)
		return "", false
	}
	dc, ok := deviceapi.ParseDeltaCustom(dt)
	if !ok || dc.DeltaFrom != c.SHA256 || dc.DeltaTo != hex.EncodeToString(w.target.Hashes["sha256"]) {
		u.log.Warn("delta target does not match", "path", ref.Path)
		return "", false
	}
	sum, ok := dt.Hashes["sha256"]
	if !ok {
		return "", false
	}
	part := u.staging(hex.EncodeToString(sum) + ".delta")
	if err := u.dl.fetch(ctx, u.targetURL(ref.Path), part, dt.Length, sum); err != nil {
		u.log.Warn("delta download failed", "path", ref.Path, "err", err)
		return "", false
	}
	return part, true
}

// applyDelta writes component name of slot from the patch against base, the committed slot's
// record of the component (which Boot verifies the file against at every run). WriteComponent checks the output's signed length and SHA-256 as it writes it, so Apply
// leaves the hash to it; and the base's dictionary is named from its record rather than from
// a second read of it. A base that does not match its record yields an output that fails that
// check, and the full image is used.
func (u *Updater) applyDelta(ctx context.Context, slot, name string, want ComponentImage, baseSlot string, base ComponentImage, patchPath string) error {
	baseBytes, release, err := delta.MapFile(u.cfg.Slots.ComponentPath(baseSlot, name))
	if err != nil {
		return err
	}
	defer release()
	sum, err := hex.DecodeString(want.SHA256)
	if err != nil {
		return err
	}
	baseSum, err := hex.DecodeString(base.SHA256)
	if err != nil {
		return err
	}
	return u.cfg.Slots.WriteComponent(slot, name, want, func(w io.Writer) error {
		p, err := u.cfg.Slots.fs.OpenFile(patchPath, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer p.Close()
		return delta.Apply(ctx, w, baseBytes, p, delta.Target{Length: want.Length, SHA256: sum},
			delta.ApplyOptions{BaseSHA256: baseSum, CallerHashes: true, Decoders: u.cfg.Decoders})
	})
}

// tufView is what the updater reads from one repository's verified metadata: go-tuf's
// updater after a full refresh, or the metadata the kept state advanced to (trustedView).
type tufView interface {
	GetTopLevelTargets() map[string]*metadata.TargetFiles
	GetTargetInfo(targetPath string) (*metadata.TargetFiles, error)
}

// tufCache is one repository's verified metadata, kept in memory between check-ins.
type tufCache struct {
	view tufView
	// up is go-tuf's updater when a full refresh built view, nil when view is a trustedView.
	up *updater.Updater
	// trusted is the verified metadata behind view: root, timestamp, snapshot, targets.
	trusted trustedmetadata.TrustedMetadata
	fetch   *tufFetcher
	// The download limits of each role's metadata (go-tuf's defaults).
	rootMax, timestampMax, snapshotMax, targetsMax int64
	// timestamp is the timestamp file the refresh that built view downloaded.
	timestamp []byte
}

// client refreshes one TUF repository, trusting the newest cached root.
//
// A check-in that finds nothing new reuses the metadata verified by the previous refresh
// (cached): it still asks for the next root version and downloads the timestamp, as every
// TUF update cycle starts, and when no new root exists and the timestamp is byte for byte the
// one already verified with the same root, the snapshot and targets it names are the ones
// already verified too. Only the freeze checks are left, and they run against the current
// time: an expired root, timestamp, snapshot or targets is refused as a full refresh would
// refuse it.
//
// When the timestamp changed but the root did not, the kept metadata is advanced (advance):
// the new timestamp, then the snapshot and the targets it names are downloaded and each is
// verified by go-tuf's own checks (signatures by the kept root, the rollback checks against
// the kept timestamp and snapshot, lengths and hashes, versions, expiry), exactly as a full
// refresh verifies them after loading the same files from disk; only the re-verification of
// the root and of the old files read back from disk is left out. Anything else (a new root, a
// repository with delegations, any refusal or error) goes the full way through go-tuf, from
// the cached root on disk, reusing the answers already fetched.
func (u *Updater) client(ctx context.Context, name, metaURL string, bootstrap []byte, cached **tufCache) (tufView, error) {
	now := time.Now()
	if u.cfg.Now != nil {
		now = u.cfg.Now()
	}
	now = now.UTC()
	dir := filepath.Join(u.cfg.StateDir, name)
	var prefetched map[string]prefetch
	if c := *cached; c != nil {
		*cached = nil
		view, pre, err := c.reuse(ctx, metaURL, now)
		if err == nil && view != nil {
			*cached = c
			return view, nil
		}
		if err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("%s metadata: %w", name, err)
		}
		if err == nil {
			next, aerr := c.advance(dir, metaURL, pre, now)
			if aerr == nil {
				*cached = next
				return next.view, nil
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s metadata: %w", name, aerr)
			}
			u.log.Debug("kept metadata not advanced; refreshing from the cached root", "repository", name, "err", aerr)
		}
		prefetched = pre
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	roots := [][]byte{bootstrap}
	if b, err := os.ReadFile(filepath.Join(dir, "root.json")); err == nil {
		roots = [][]byte{b, bootstrap}
	}
	var lastErr error
	for i, root := range roots {
		// The root read from root.json is not written back; the pinned root, when root.json
		// is missing or does not load, is.
		c, err := u.newTUF(ctx, dir, metaURL, root, i == 0 && len(roots) == 2)
		if err != nil {
			// A cached root that does not load (torn write) falls back
			// to the pinned root; the chain is walked again from there.
			lastErr = err
			continue
		}
		up, f := c.up, c.fetch
		f.prefetched = prefetched
		f.record = timestampURL(metaURL)
		if err := up.Refresh(); err != nil {
			// A refresh the agent or the network cut short (stopping, a dropped connection)
			// refused nothing: it is an interruption, not a refusal of the metadata.
			var netErr *url.Error
			if ctx.Err() != nil || errors.As(err, &netErr) {
				return nil, fmt.Errorf("%s metadata: %w", name, err)
			}
			return nil, fmt.Errorf("%w: %w", ErrMetadata, err)
		}
		f.prefetched, f.record = nil, ""
		if f.recorded != nil {
			c.timestamp, f.recorded = f.recorded, nil
			c.trusted = up.GetTrustedMetadataSet()
			*cached = c
		}
		return up, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrMetadata, lastErr)
}

func timestampURL(metaURL string) string {
	return strings.TrimSuffix(metaURL, "/") + "/" + metadata.TIMESTAMP + ".json"
}

// reuse returns the cached metadata when nothing changed since it was refreshed (see client),
// or nil and what it downloaded, for advance or the full refresh to use rather than download
// again.
func (c *tufCache) reuse(ctx context.Context, metaURL string, now time.Time) (tufView, map[string]prefetch, error) {
	c.fetch.ctx = ctx
	trusted := c.trusted
	targets := trusted.Targets[metadata.TARGETS]
	if trusted.Root == nil || trusted.Timestamp == nil || trusted.Snapshot == nil || targets == nil {
		return nil, nil, nil
	}
	pre := map[string]prefetch{}
	nextRoot := fmt.Sprintf("%s/%d.%s.json", strings.TrimSuffix(metaURL, "/"), trusted.Root.Signed.Version+1, metadata.ROOT)
	_, err := c.fetch.DownloadFile(nextRoot, c.rootMax, 0)
	var httpErr *metadata.ErrDownloadHTTP
	if err == nil || !errors.As(err, &httpErr) || httpErr.StatusCode != http.StatusNotFound {
		// A new root (or an answer other than "none"): the full refresh walks the chain.
		return nil, pre, err
	}
	pre[nextRoot] = prefetch{err: err}
	tsURL := timestampURL(metaURL)
	ts, err := c.fetch.DownloadFile(tsURL, c.timestampMax, 0)
	if err != nil {
		return nil, pre, err
	}
	pre[tsURL] = prefetch{data: ts}
	if string(ts) != string(c.timestamp) {
		return nil, pre, nil
	}
	if trusted.Root.Signed.IsExpired(now) || trusted.Timestamp.Signed.IsExpired(now) ||
		trusted.Snapshot.Signed.IsExpired(now) {
		return nil, pre, nil
	}
	for _, t := range trusted.Targets {
		if t.Signed.IsExpired(now) {
			return nil, pre, nil
		}
	}
	if c.up != nil {
		// Delegated roles loaded later (GetTargetInfo) are checked against this time.
		c.up.UnsafeSetRefTime(now)
	}
	return c.view, nil, nil
}

// advance verifies the new timestamp reuse downloaded (pre), and the snapshot and targets it
// names, against the kept metadata, and returns the cache of the result, which it has written
// to dir as go-tuf would. It follows go-tuf's refresh step for step from the point where the
// full refresh has loaded the kept root and the old timestamp and snapshot from disk: the same
// trustedmetadata calls check every signature of the new files with the kept root, the
// rollback of the timestamp and snapshot versions, the lengths and hashes each file's parent
// lists, the snapshot and targets versions, and expiry at now. It returns an error, and the
// caller refreshes the full way, for anything it does not handle the same way: a timestamp of
// the same version, a snapshot that did not change, delegations.
func (c *tufCache) advance(dir, metaURL string, pre map[string]prefetch, now time.Time) (*tufCache, error) {
	ts, ok := pre[timestampURL(metaURL)]
	if !ok || ts.err != nil || c.trusted.Root == nil || c.trusted.Timestamp == nil || c.trusted.Snapshot == nil {
		return nil, errors.New("no new timestamp to advance to")
	}
	// The root is the kept one (reuse found no next root); the old timestamp is loaded as
	// go-tuf loads the one on disk, to check the new one against.
	t := &trustedmetadata.TrustedMetadata{Root: c.trusted.Root, Timestamp: c.trusted.Timestamp,
		Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, RefTime: now}
	if _, err := t.UpdateTimestamp(ts.data); err != nil {
		return nil, err
	}
	snapMeta := t.Timestamp.Signed.Meta[metadata.SNAPSHOT+".json"]
	if snapMeta == nil || snapMeta.Version == c.trusted.Snapshot.Signed.Version {
		return nil, errors.New("the timestamp names the kept snapshot")
	}
	// The old snapshot, as go-tuf loads the one on disk once the new timestamp is in: the new
	// one must keep every file it lists, at the same version or newer.
	t.Snapshot = c.trusted.Snapshot
	base := strings.TrimSuffix(metaURL, "/") + "/"
	roleURL := func(role string, version int64) string {
		if t.Root.Signed.ConsistentSnapshot {
			return fmt.Sprintf("%s%d.%s.json", base, version, url.PathEscape(role))
		}
		return base + url.PathEscape(role) + ".json"
	}
	snap, err := c.fetch.DownloadFile(roleURL(metadata.SNAPSHOT, snapMeta.Version), cmp.Or(snapMeta.Length, c.snapshotMax), 0)
	if err != nil {
		return nil, err
	}
	if _, err := t.UpdateSnapshot(snap, false); err != nil {
		return nil, err
	}
	targetsMeta := t.Snapshot.Signed.Meta[metadata.TARGETS+".json"]
	if targetsMeta == nil {
		return nil, errors.New("the snapshot does not list targets")
	}
	targets, err := c.fetch.DownloadFile(roleURL(metadata.TARGETS, targetsMeta.Version), cmp.Or(targetsMeta.Length, c.targetsMax), 0)
	if err != nil {
		return nil, err
	}
	top, err := t.UpdateDelegatedTargets(targets, metadata.TARGETS, metadata.ROOT)
	if err != nil {
		return nil, err
	}
	if top.Signed.Delegations != nil {
		return nil, errors.New("the targets delegate: go-tuf walks delegations")
	}
	// Written in go-tuf's order and way (timestamp, snapshot, targets), so that the next full
	// refresh, after a reboot, starts from them.
	for _, f := range []struct {
		role string
		data []byte
	}{{metadata.TIMESTAMP, ts.data}, {metadata.SNAPSHOT, snap}, {metadata.TARGETS, targets}} {
		if err := persistMetadata(dir, f.role, f.data); err != nil {
			return nil, err
		}
	}
	next := *c
	next.up, next.view, next.trusted, next.timestamp = nil, trustedView{top: top}, *t, ts.data
	return &next, nil
}

// trustedView is the view of metadata advance verified: the top-level targets, without
// delegations (advance leaves a repository that delegates to go-tuf).
type trustedView struct {
	top *metadata.Metadata[metadata.TargetsType]
}

// GetTopLevelTargets implements tufView.
func (v trustedView) GetTopLevelTargets() map[string]*metadata.TargetFiles {
	return v.top.Signed.Targets
}

// GetTargetInfo implements tufView, as go-tuf's updater answers for a repository without
// delegations.
func (v trustedView) GetTargetInfo(targetPath string) (*metadata.TargetFiles, error) {
	if t, ok := v.top.Signed.Targets[targetPath]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("target %s not found", targetPath)
}

// persistMetadata writes one role's metadata file into dir as go-tuf's updater does: a
// temporary file renamed over ROLE.json.
func persistMetadata(dir, role string, data []byte) error {
	f, err := os.CreateTemp(dir, "tuf_tmp")
	if err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return errors.Join(err, os.Remove(f.Name()))
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return errors.Join(err, os.Remove(f.Name()))
	}
	if err := f.Close(); err != nil {
		return errors.Join(err, os.Remove(f.Name()))
	}
	return os.Rename(f.Name(), filepath.Join(dir, url.PathEscape(role)+".json"))
}

func (u *Updater) newTUF(ctx context.Context, dir, metaURL string, root []byte, onDisk bool) (*tufCache, error) {
	if _, err := url.Parse(metaURL); err != nil {
		return nil, err
	}
	cfg, err := config.New(metaURL, root)
	if err != nil {
		return nil, err
	}
	cfg.LocalMetadataDir = dir
	cfg.LocalTargetsDir = filepath.Join(dir, "targets")
	f := &tufFetcher{ctx: ctx, client: u.cfg.HTTPClient, limits: u.cfg.Limits}
	cfg.Fetcher = f
	// updater.New writes the root it is given to root.json; when it was read from there, the
	// bytes are the same and the write is skipped (go-tuf keeps cfg and reads the flag at each
	// write, so later roles are written as before).
	cfg.DisableLocalCache = onDisk
	up, err := updater.New(cfg)
	cfg.DisableLocalCache = false
	if err != nil {
		return nil, err
	}
	if u.cfg.Now != nil {
		up.UnsafeSetRefTime(u.cfg.Now().UTC())
	}
	return &tufCache{view: up, up: up, fetch: f, rootMax: cfg.RootMaxLength, timestampMax: cfg.TimestampMaxLength,
		snapshotMax: cfg.SnapshotMaxLength, targetsMax: cfg.TargetsMaxLength}, nil
}
