package update

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/rampartsec/rampart/internal/agent/durable"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

// Slot names.
const (
	SlotA = "a"
	SlotB = "b"
)

// DefaultMaxBoots is how many times a trial slot may be booted without
// passing its health check before the device rolls back.
const DefaultMaxBoots = 3

const (
	stateFile    = "state.json"
	stateFormat  = 1
	maxStateSize = 1 << 20
	stagingDir   = "staging"
)

// Sentinel errors of the slot store.
var (
	// ErrNoBootableSlot means neither slot holds a verified image set.
	ErrNoBootableSlot = errors.New("no bootable slot")
	// ErrTrialPending means a trial slot awaits its health check; an
	// install must wait for commit or rollback.
	ErrTrialPending = errors.New("a trial slot is pending")
	// ErrSlotCorrupt means a slot's files do not match its recorded hashes.
	ErrSlotCorrupt = errors.New("slot content does not match its record")
)

// ComponentImage records one installed image.
type ComponentImage struct {
	Version         string `json:"version"`
	SecurityVersion uint64 `json:"security_version"`
	SHA256          string `json:"sha256"`
	Length          int64  `json:"length"`
}

// SlotInfo records what a complete, verified slot holds.
type SlotInfo struct {
	Release    string                    `json:"release"`
	Components map[string]ComponentImage `json:"components"`
}

// Fingerprint names the exact image set of a slot: component=sha256 pairs
// in component order.
func (i *SlotInfo) Fingerprint() string {
	names := slices.Sorted(maps.Keys(i.Components))
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + "=" + i.Components[n].SHA256 + ";")
	}
	return b.String()
}

// SlotState is the A/B state file, replaced atomically on every change.
//
// Invariant: a slot appears in Slots only after all its files were written,
// fsynced and verified; writes only ever go to a slot absent from Slots.
// Committed never changes while its slot is written, so a power cut at any
// point leaves at least the committed slot bootable.
type SlotState struct {
	Format    int                  `json:"format"`
	Committed string               `json:"committed,omitempty"`
	Trial     string               `json:"trial,omitempty"`
	BootCount int                  `json:"boot_count"`
	MaxBoots  int                  `json:"max_boots"`
	Slots     map[string]*SlotInfo `json:"slots"`
	// SecurityFloor is the highest security version ever committed per
	// component; the agent refuses anything below it.
	SecurityFloor map[string]uint64 `json:"security_floor,omitempty"`
	// LastFailure explains the last automatic rollback.
	LastFailure string `json:"last_failure,omitempty"`
	// FailedSet fingerprints the image set that was rolled back, so the
	// same set is not installed again and again (a boot loop); a
	// different set, or a commit, clears it.
	FailedSet string `json:"failed_set,omitempty"`
	// Unreported is the release last committed while the server has not taken its committed
	// report yet. Commit sets it in the same write, so that a report lost to a power cut right
	// after the commit, or to a dropped connection, is sent again (Updater.FinishBoot).
	Unreported string `json:"unreported,omitempty"`
}

// Slots is the A/B slot store under one directory: a/ and b/ hold one file
// per component, staging/ holds downloads in progress, state.json the state.
type Slots struct {
	dir      string
	fs       FS
	maxBoots int

	// verified remembers, per file this Slots verified, the SHA-256 it read with the file's
	// version (durable.Known), so that Boot, which the updater runs at every check-in, reads
	// the committed slot's files again only when they changed (see verifyFile). shared, when
	// set (UseDigests), takes its place.
	verified durable.Known[[]byte]
	shared   *durable.Known[[]byte]

	// kept is the state this Slots last read from or wrote to the state file, with the file's
	// version then (durable.VersionOf); State answers a copy of it while the file has that
	// version, and reads the file again otherwise. Every save replaces the file (a new inode),
	// and a write in place changes its change time.
	keptMu  sync.Mutex
	kept    *SlotState
	keptVer durable.Version
}

// UseDigests makes the slots keep the SHA-256 of the files they read in k rather than in their
// own memo: the agent shares one per boot with its measurement of the booted slot
// (attest.FileDigests), so that a committed file measured in a check-in is not read again to
// verify it in the same check-in, nor the other way round. Both keep a digest only for a
// version of the file that was settled as it was read (durable.Known).
func (s *Slots) UseDigests(k *durable.Known[[]byte]) { s.shared = k }

func (s *Slots) digests() *durable.Known[[]byte] {
	if s.shared != nil {
		return s.shared
	}
	return &s.verified
}

// OpenSlots opens (creating) the slot directory.
func OpenSlots(dir string, fsys FS) (*Slots, error) {
	if fsys == nil {
		fsys = OSFS{}
	}
	s := &Slots{dir: dir, fs: fsys, maxBoots: DefaultMaxBoots}
	for _, d := range []string{dir, s.slotDir(SlotA), s.slotDir(SlotB), filepath.Join(dir, stagingDir)} {
		if err := fsys.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("update.OpenSlots: %w", err)
		}
	}
	return s, nil
}

// ReadState reads the slot state under dir without creating or changing anything (for
// `rampart-agent status`); a missing folder or file is an empty, unprovisioned state.
func ReadState(dir string) (SlotState, error) {
	return (&Slots{dir: dir, fs: OSFS{}, maxBoots: DefaultMaxBoots}).State()
}

// Dir returns the slot directory.
func (s *Slots) Dir() string { return s.dir }

func (s *Slots) slotDir(slot string) string { return filepath.Join(s.dir, slot) }

// ComponentPath is the file holding component name in slot.
func (s *Slots) ComponentPath(slot, name string) string {
	return filepath.Join(s.slotDir(slot), name)
}

// State reads the state file; a missing file is an empty, unprovisioned state. The state this
// Slots last read or wrote is answered again without reading the file while the file's version
// (durable.VersionOf) is the one it had then.
func (s *Slots) State() (SlotState, error) {
	path := filepath.Join(s.dir, stateFile)
	if st, ok := s.keptState(path); ok {
		return st, nil
	}
	b, version, err := readFileVersion(s.fs, path, maxStateSize)
	if errors.Is(err, os.ErrNotExist) {
		s.forgetState()
		return SlotState{Format: stateFormat, MaxBoots: s.maxBoots, Slots: map[string]*SlotInfo{}}, nil
	}
	if err != nil {
		s.forgetState()
		return SlotState{}, slotsErr("State", "cannot read the slot state: %w", err)
	}
	st, err := decodeState(b)
	if err != nil {
		s.forgetState()
		return SlotState{}, err
	}
	if version != nil {
		s.keepState(*version, st)
	}
	return st, nil
}

// keptState returns a copy of the kept state when the file at path has its version.
func (s *Slots) keptState(path string) (SlotState, bool) {
	s.keptMu.Lock()
	kept, at := s.kept, s.keptVer
	s.keptMu.Unlock()
	if kept == nil {
		return SlotState{}, false
	}
	fi, err := s.fs.Stat(path)
	if err != nil {
		return SlotState{}, false
	}
	if v, ok := durable.VersionOf(fi); !ok || v != at {
		return SlotState{}, false
	}
	return kept.clone(), true
}

// keepState keeps a copy of st as the state file's content at version v.
func (s *Slots) keepState(v durable.Version, st SlotState) {
	c := st.clone()
	s.keptMu.Lock()
	defer s.keptMu.Unlock()
	s.kept, s.keptVer = &c, v
}

func (s *Slots) forgetState() {
	s.keptMu.Lock()
	defer s.keptMu.Unlock()
	s.kept = nil
}

func decodeState(b []byte) (SlotState, error) {
	var st SlotState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return SlotState{}, slotsErr("State", "the slot state is damaged: %w", err)
	}
	if st.Format != stateFormat {
		return SlotState{}, slotsErr("State", "the slot state has format %d, which this agent does not read; install a newer agent", st.Format)
	}
	if st.Slots == nil {
		st.Slots = map[string]*SlotInfo{}
	}
	return st, nil
}

// clone is a copy of st that shares no map or record with it, as reading st back from the
// file would give it (an empty security floor is left out of the file).
func (st SlotState) clone() SlotState {
	c := st
	c.Slots = make(map[string]*SlotInfo, len(st.Slots))
	for name, info := range st.Slots {
		if info == nil {
			c.Slots[name] = nil
			continue
		}
		i := *info
		i.Components = maps.Clone(info.Components)
		c.Slots[name] = &i
	}
	c.SecurityFloor = nil
	if len(st.SecurityFloor) > 0 {
		c.SecurityFloor = maps.Clone(st.SecurityFloor)
	}
	return c
}

func (s *Slots) save(st SlotState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(s.dir, stateFile)
	s.forgetState()
	if err := writeFileAtomic(s.fs, path, b); err != nil {
		return err
	}
	// What was written, with the file's version now: the state is read back only when it changes.
	if fi, err := s.fs.Stat(path); err == nil {
		if v, ok := durable.VersionOf(fi); ok {
			s.keepState(v, st)
		}
	}
	return nil
}

// Boot is the result of a (simulated) boot.
type Boot struct {
	// Slot is the slot booted.
	Slot string
	// Trial is true when Slot is an uncommitted trial awaiting its health check.
	Trial bool
	Info  SlotInfo
	// RolledBack explains an automatic rollback done by this boot.
	RolledBack string
	// RolledBackRelease is the release of the trial slot this boot rolled back (past the boot
	// limit or failing verification); "" when no trial was rolled back (a committed slot that
	// rotted on disk falls back without blaming a release).
	RolledBackRelease string
}

// Boot does what the bootloader and early boot do: count a boot of a
// pending trial slot and roll back when the count passes the limit or the
// trial slot fails verification, then verify the slot it boots.
func (s *Slots) Boot() (Boot, error) {
	st, err := s.State()
	if err != nil {
		return Boot{}, fmt.Errorf("update.Slots.Boot: %w", err)
	}
	var rolledBack, trialRelease string
	if st.Trial != "" {
		st.BootCount++
		switch {
		case st.BootCount > st.MaxBoots:
			rolledBack = fmt.Sprintf("trial slot %s booted %d times without passing its health check", st.Trial, st.MaxBoots)
		case s.verify(st.Trial, st.Slots[st.Trial]) != nil:
			rolledBack = fmt.Sprintf("trial slot %s failed verification", st.Trial)
		}
		if rolledBack != "" {
			if info := st.Slots[st.Trial]; info != nil {
				trialRelease = info.Release
			}
			rollback(&st, rolledBack)
		}
		if err := s.save(st); err != nil {
			return Boot{}, slotsErr("Boot", "cannot save the slot state: %w", err)
		}
		if rolledBack == "" {
			return Boot{Slot: st.Trial, Trial: true, Info: *st.Slots[st.Trial]}, nil
		}
	}
	if st.Committed == "" || st.Slots[st.Committed] == nil {
		return Boot{RolledBack: rolledBack, RolledBackRelease: trialRelease}, slotsErr("Boot", "%w", ErrNoBootableSlot)
	}
	verr := s.verifyCommitted(st.Committed, st.Slots[st.Committed])
	if verr == nil {
		return Boot{Slot: st.Committed, Info: *st.Slots[st.Committed], RolledBack: rolledBack, RolledBackRelease: trialRelease}, nil
	}
	// The committed slot rotted on disk. The other slot still holds the
	// previously committed release until the next install starts; if it
	// verifies, it becomes the committed slot, so that the next install
	// writes over the broken one and never over the one running.
	other := otherSlot(st.Committed)
	if info := st.Slots[other]; info != nil && s.verify(other, info) == nil {
		reason := fmt.Sprintf("committed slot %s failed verification; fell back to slot %s", st.Committed, other)
		delete(st.Slots, st.Committed)
		st.Committed, st.LastFailure = other, reason
		if err := s.save(st); err != nil {
			return Boot{}, slotsErr("Boot", "cannot save the slot state: %w", err)
		}
		return Boot{Slot: other, Info: *info, RolledBack: reason}, nil
	}
	return Boot{RolledBack: rolledBack}, slotsErr("Boot", "%w: committed %w", ErrNoBootableSlot, verr)
}

func otherSlot(slot string) string {
	if slot == SlotA {
		return SlotB
	}
	return SlotA
}

func rollback(st *SlotState, reason string) {
	if info := st.Slots[st.Trial]; info != nil {
		st.FailedSet = info.Fingerprint()
	}
	delete(st.Slots, st.Trial)
	st.Trial = ""
	st.BootCount = 0
	st.LastFailure = reason
}

// verify re-reads every file of slot and checks it against info.
func (s *Slots) verify(slot string, info *SlotInfo) error {
	return s.verifySlot(slot, info, false)
}

// verifyCommitted is verify for the committed slot as Boot boots it: a file this Slots already
// verified against the same record is read again only when its version changed.
func (s *Slots) verifyCommitted(slot string, info *SlotInfo) error {
	return s.verifySlot(slot, info, true)
}

func (s *Slots) verifySlot(slot string, info *SlotInfo, remembered bool) error {
	if info == nil {
		return fmt.Errorf("slot %s: %w: no record", slot, ErrSlotCorrupt)
	}
	for name, c := range info.Components {
		if err := s.verifyFile(s.ComponentPath(slot, name), c, remembered); err != nil {
			return fmt.Errorf("slot %s component %s: %w", slot, name, err)
		}
	}
	return nil
}

// verifyFile checks the file at path against c, reading it whole. With remembered, a file
// whose version (durable.VersionOf, taken from the open file before it is read) is the one it
// had when its SHA-256 was last read, and whose size and that SHA-256 are the record's, is not
// read again: no write, truncation or rename over it leaves its change time as it was. A
// version is remembered only when it was settled as the file was read
// (durable.Version.Settled), and only by this Slots and what shares its memo in the same boot
// (UseDigests): an agent that starts, as after a reboot, reads every file once.
func (s *Slots) verifyFile(path string, c ComponentImage, remembered bool) error {
	memo := s.digests()
	examined := memo.Examined()
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		memo.Forget(path)
		return fmt.Errorf("%w: %w", ErrSlotCorrupt, err)
	}
	defer f.Close()
	var version durable.Version
	versioned := false
	fi, err := f.Stat()
	if err == nil {
		version, versioned = durable.VersionOf(fi)
	}
	if remembered && versioned && fi.Size() == c.Length {
		if d, ok := memo.Get(path, version); ok && hex.EncodeToString(d) == c.SHA256 {
			return nil
		}
	}
	memo.Forget(path)
	sum, err := hashMatches(f, c)
	if err != nil {
		return err
	}
	if versioned {
		memo.Put(path, version, examined, sum)
	}
	return nil
}

// hashMatches reads f whole and checks its length and SHA-256 against c, returning the SHA-256.
func hashMatches(f File, c ComponentImage) ([]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, c.Length+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSlotCorrupt, err)
	}
	sum := h.Sum(nil)
	if n != c.Length || hex.EncodeToString(sum) != c.SHA256 {
		return nil, ErrSlotCorrupt
	}
	return sum, nil
}

// BeginInstall picks the slot to write (the one not committed), removes it
// from the state (persisted) so that it is never booted half-written, and
// empties its directory.
func (s *Slots) BeginInstall() (string, error) {
	st, err := s.State()
	if err != nil {
		return "", fmt.Errorf("update.Slots.BeginInstall: %w", err)
	}
	if st.Trial != "" {
		return "", slotsErr("BeginInstall", "%w", ErrTrialPending)
	}
	slot := SlotA
	if st.Committed == SlotA {
		slot = SlotB
	}
	if _, ok := st.Slots[slot]; ok {
		delete(st.Slots, slot)
		if err := s.save(st); err != nil {
			return "", slotsErr("BeginInstall", "cannot save the slot state: %w", err)
		}
	}
	entries, err := s.fs.ReadDir(s.slotDir(slot))
	if err != nil {
		return "", slotsErr("BeginInstall", "cannot read slot %s: %w", slot, err)
	}
	for _, e := range entries {
		if err := s.fs.Remove(filepath.Join(s.slotDir(slot), e.Name())); err != nil {
			return "", slotsErr("BeginInstall", "cannot empty slot %s: %w", slot, err)
		}
	}
	return slot, nil
}

// WriteComponent writes component name of slot from what write produces,
// checking length and SHA-256 against want, then fsyncs it. The slot must
// have been returned by BeginInstall.
func (s *Slots) WriteComponent(slot, name string, want ComponentImage, write func(io.Writer) error) error {
	if !deviceapi.ComponentRe.MatchString(name) {
		return slotsErr("WriteComponent", "invalid component name %q", name)
	}
	path := s.ComponentPath(slot, name)
	f, err := s.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return slotsErr("WriteComponent", "cannot write component %s to slot %s: %w", name, slot, err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h), limit: want.Length}
	if err := write(cw); err != nil {
		f.Close()
		return slotsErr("WriteComponent", "cannot write component %s to slot %s: %w", name, slot, err)
	}
	if cw.n != want.Length || hex.EncodeToString(h.Sum(nil)) != want.SHA256 {
		f.Close()
		return slotsErr("WriteComponent", "%s: %w", name, ErrVerification)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return slotsErr("WriteComponent", "cannot write component %s to slot %s: %w", name, slot, err)
	}
	if err := f.Close(); err != nil {
		return slotsErr("WriteComponent", "cannot write component %s to slot %s: %w", name, slot, err)
	}
	return nil
}

// PlaceComponent moves a verified staging file into slot as component name.
func (s *Slots) PlaceComponent(slot, name, staged string) error {
	if !deviceapi.ComponentRe.MatchString(name) {
		return slotsErr("PlaceComponent", "invalid component name %q", name)
	}
	if err := s.fs.Rename(staged, s.ComponentPath(slot, name)); err != nil {
		return slotsErr("PlaceComponent", "cannot move component %s into slot %s: %w", name, slot, err)
	}
	return nil
}

// Switch verifies every file of slot against info, makes the directory
// entries durable, and records slot as the trial slot to boot next.
func (s *Slots) Switch(slot string, info SlotInfo) error {
	if err := s.fs.SyncDir(s.slotDir(slot)); err != nil {
		return slotsErr("Switch", "cannot write slot %s: %w", slot, err)
	}
	if err := s.verify(slot, &info); err != nil {
		return slotsErr("Switch", "%w", err)
	}
	st, err := s.State()
	if err != nil {
		return fmt.Errorf("update.Slots.Switch: %w", err)
	}
	if st.Trial != "" || slot == st.Committed {
		return slotsErr("Switch", "slot %s cannot become the trial slot", slot)
	}
	info.Components = maps.Clone(info.Components)
	st.Slots[slot] = &info
	st.Trial = slot
	st.BootCount = 0
	if st.MaxBoots == 0 {
		st.MaxBoots = s.maxBoots
	}
	if err := s.save(st); err != nil {
		return slotsErr("Switch", "cannot save the slot state: %w", err)
	}
	return nil
}

// Commit makes the booted trial slot the committed one and raises the
// security floor to its components' security versions.
func (s *Slots) Commit() error {
	st, err := s.State()
	if err != nil {
		return fmt.Errorf("update.Slots.Commit: %w", err)
	}
	if st.Trial == "" {
		return slotsErr("Commit", "no trial slot to commit")
	}
	st.Committed, st.Trial, st.BootCount, st.LastFailure, st.FailedSet = st.Trial, "", 0, "", ""
	st.Unreported = st.Slots[st.Committed].Release
	if st.SecurityFloor == nil {
		st.SecurityFloor = map[string]uint64{}
	}
	for name, c := range st.Slots[st.Committed].Components {
		st.SecurityFloor[name] = max(st.SecurityFloor[name], c.SecurityVersion)
	}
	if err := s.save(st); err != nil {
		return slotsErr("Commit", "cannot save the slot state: %w", err)
	}
	return nil
}

// Reported records that the server took the committed report of release (SlotState.Unreported).
func (s *Slots) Reported(release string) error {
	st, err := s.State()
	if err != nil {
		return fmt.Errorf("update.Slots.Reported: %w", err)
	}
	if st.Unreported != release {
		return nil
	}
	st.Unreported = ""
	if err := s.save(st); err != nil {
		return fmt.Errorf("update.Slots.Reported: %w", err)
	}
	return nil
}

// Rollback abandons the trial slot, recording why.
func (s *Slots) Rollback(reason string) error {
	st, err := s.State()
	if err != nil {
		return fmt.Errorf("update.Slots.Rollback: %w", err)
	}
	if st.Trial == "" {
		return nil
	}
	rollback(&st, reason)
	if err := s.save(st); err != nil {
		return slotsErr("Rollback", "cannot save the slot state: %w", err)
	}
	return nil
}

// Provision installs a factory image set into slot a and commits it; it
// refuses a device that already has a committed slot.
func (s *Slots) Provision(release string, comps map[string]ComponentImage, open func(name string) (io.ReadCloser, error)) error {
	st, err := s.State()
	if err != nil {
		return fmt.Errorf("update.Slots.Provision: %w", err)
	}
	if st.Committed != "" {
		return slotsErr("Provision", "the device already has a committed slot")
	}
	slot, err := s.BeginInstall()
	if err != nil {
		return fmt.Errorf("update.Slots.Provision: %w", err)
	}
	for name, c := range comps {
		err := s.WriteComponent(slot, name, c, func(w io.Writer) error {
			r, err := open(name)
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = io.Copy(w, r)
			return err
		})
		if err != nil {
			return fmt.Errorf("update.Slots.Provision: %w", err)
		}
	}
	if err := s.Switch(slot, SlotInfo{Release: release, Components: comps}); err != nil {
		return fmt.Errorf("update.Slots.Provision: %w", err)
	}
	if _, err := s.Boot(); err != nil {
		return fmt.Errorf("update.Slots.Provision: %w", err)
	}
	if err := s.Commit(); err != nil {
		return fmt.Errorf("update.Slots.Provision: %w", err)
	}
	return nil
}

// slotsErr is a failure of the slots on disk. op names the method, for the log; the public
// sentence says what failed, with the file and the system's reason, and is what an operator
// reads as the install's reason in deployment show and on the agent's last line.
func slotsErr(op, format string, args ...any) error {
	return fmt.Errorf("update.Slots.%s: %w", op, public.Errorf(public.Unavailable, format, args...))
}

// countWriter refuses to write past limit bytes (endless data).
type countWriter struct {
	w     io.Writer
	n     int64
	limit int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.n+int64(len(p)) > c.limit {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.limit)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
