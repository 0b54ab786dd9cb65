package tuf

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// State is the image repository's metadata as the server persists it.
type State struct {
	// Roots holds every root version; Roots[i] is version i+1.
	Roots     [][]byte `json:"roots"`
	Targets   []byte   `json:"targets,omitempty"`
	Snapshot  []byte   `json:"snapshot,omitempty"`
	Timestamp []byte   `json:"timestamp,omitempty"`
	// TargetsAbove, when set, is a version the next targets must exceed (NextTargets offers
	// the version after it): RaiseVersions sets it after a restore, since targets signed
	// offline after the backup may have reached devices.
	TargetsAbove int64 `json:"targets_above,omitempty"`
}

// Repository is the server's view of the image repository. It accepts
// roots and targets signed offline, and signs snapshot and timestamp with
// the online keys. It is not safe for concurrent use; the server serialises
// changes (one row lock or mutex) and persists State after each.
type Repository struct {
	st     State
	online *OnlineKeys
	exp    Expiry
}

// OpenRepository returns a repository over st (empty for a new one),
// checking the root chain.
func OpenRepository(st State, online *OnlineKeys, exp Expiry) (*Repository, error) {
	r := &Repository{online: online, exp: exp}
	for i, b := range st.Roots {
		var prev []byte
		if i > 0 {
			prev = st.Roots[i-1]
		}
		// Expiry is checked when a root is added, not when reopening.
		if err := VerifyRootUpdate(prev, b, time.Time{}); err != nil {
			return nil, fmt.Errorf("tuf.OpenRepository: root %d: %w", i+1, err)
		}
	}
	r.st = st
	return r, nil
}

// State returns the metadata to persist.
func (r *Repository) State() State {
	return State{Roots: append([][]byte(nil), r.st.Roots...), Targets: r.st.Targets, Snapshot: r.st.Snapshot, Timestamp: r.st.Timestamp,
		TargetsAbove: r.st.TargetsAbove}
}

// Root returns the newest root, or nil before initialisation.
func (r *Repository) Root() []byte {
	if len(r.st.Roots) == 0 {
		return nil
	}
	return r.st.Roots[len(r.st.Roots)-1]
}

// Targets returns the current signed targets metadata, or nil.
func (r *Repository) Targets() []byte { return r.st.Targets }

// AddRoot appends a root signed offline (version 1 for a new repository,
// or a rotation). The new root must trust the server's online snapshot and
// timestamp keys. Snapshot and timestamp are re-signed so that clients
// that dropped them after a key rotation get fresh ones.
func (r *Repository) AddRoot(b []byte, now time.Time) error {
	if err := VerifyRootUpdate(r.Root(), b, now); err != nil {
		return fmt.Errorf("tuf.Repository.AddRoot: %w", err)
	}
	root, err := parseRoot(b)
	if err != nil {
		return fmt.Errorf("tuf.Repository.AddRoot: %w", err)
	}
	if err := trusts(root, metadata.SNAPSHOT, r.online.Snapshot); err != nil {
		return fmt.Errorf("tuf.Repository.AddRoot: %w", err)
	}
	if err := trusts(root, metadata.TIMESTAMP, r.online.Timestamp); err != nil {
		return fmt.Errorf("tuf.Repository.AddRoot: %w", err)
	}
	r.st.Roots = append(r.st.Roots, b)
	if r.st.Targets != nil {
		if err := r.publish(now, true, 1); err != nil {
			return fmt.Errorf("tuf.Repository.AddRoot: %w", err)
		}
	}
	return nil
}

func trusts(root *metadata.Metadata[metadata.RootType], role string, k *PrivateKey) error {
	rl, ok := root.Signed.Roles[role]
	if !ok {
		return refused("the root has no %s role", role)
	}
	for _, id := range rl.KeyIDs {
		if id == k.ID() {
			return nil
		}
	}
	return refused("the root does not trust the server's online %s key; make the root with `rampart keys init` against this server", role)
}

// NextTargets returns the unsigned payload of the next targets version with
// images and deltas added, expiring after the targets role's lifetime.
func (r *Repository) NextTargets(images []Image, deltas []Delta, now time.Time) ([]byte, error) {
	if r.Root() == nil {
		return nil, fmt.Errorf("tuf.Repository.NextTargets: repository has no root")
	}
	b, err := BuildTargets(r.st.Targets, images, deltas, now.Add(r.exp.Targets))
	if err != nil {
		return nil, fmt.Errorf("tuf.Repository.NextTargets: %w", err)
	}
	if r.st.TargetsAbove == 0 {
		return b, nil
	}
	t, err := parseTargets(b)
	if err != nil {
		return nil, fmt.Errorf("tuf.Repository.NextTargets: %w", err)
	}
	if t.Signed.Version > r.st.TargetsAbove {
		return b, nil
	}
	t.Signed.Version = r.st.TargetsAbove + 1
	if b, err = t.ToBytes(true); err != nil {
		return nil, fmt.Errorf("tuf.Repository.NextTargets: %w", err)
	}
	return b, nil
}

// SetTargets installs targets signed offline: they must meet the newest
// root's targets threshold, have a higher version than the current targets,
// and not be expired. Snapshot and timestamp are then re-signed.
func (r *Repository) SetTargets(b []byte, now time.Time) error {
	if r.Root() == nil {
		return fmt.Errorf("tuf.Repository.SetTargets: repository has no root")
	}
	root, err := parseRoot(r.Root())
	if err != nil {
		return fmt.Errorf("tuf.Repository.SetTargets: %w", err)
	}
	t, err := parseTargets(b)
	if err != nil {
		return fmt.Errorf("tuf.Repository.SetTargets: %w", err)
	}
	if err := root.VerifyDelegate(metadata.TARGETS, t); err != nil {
		return fmt.Errorf("tuf.Repository.SetTargets: %w", refused("the targets lack the signatures of the root's targets keys (%w)", err))
	}
	if t.Signed.IsExpired(now) {
		return fmt.Errorf("tuf.Repository.SetTargets: %w", refused("the targets expired at %s", t.Signed.Expires.Format(time.RFC3339)))
	}
	if r.st.Targets != nil {
		cur, err := parseTargets(r.st.Targets)
		if err != nil {
			return fmt.Errorf("tuf.Repository.SetTargets: %w", err)
		}
		if t.Signed.Version <= cur.Signed.Version {
			return fmt.Errorf("tuf.Repository.SetTargets: %w", refused("the targets are version %d, which is not above the current %d; make them again with release sign", t.Signed.Version, cur.Signed.Version))
		}
	}
	r.st.Targets = b
	if err := r.publish(now, true, 1); err != nil {
		return fmt.Errorf("tuf.Repository.SetTargets: %w", err)
	}
	return nil
}

// Refresh re-signs the online roles whose remaining lifetime has fallen
// below half: snapshot (and then timestamp) or timestamp alone. The server
// calls it periodically and persists State when it reports a change.
func (r *Repository) Refresh(now time.Time) (bool, error) {
	if r.st.Targets == nil {
		return false, nil
	}
	snap, err := (&metadata.Metadata[metadata.SnapshotType]{}).FromBytes(r.st.Snapshot)
	if err != nil {
		return false, fmt.Errorf("tuf.Repository.Refresh: %w", err)
	}
	ts, err := (&metadata.Metadata[metadata.TimestampType]{}).FromBytes(r.st.Timestamp)
	if err != nil {
		return false, fmt.Errorf("tuf.Repository.Refresh: %w", err)
	}
	switch {
	case snap.Signed.Expires.Before(now.Add(r.exp.Snapshot / 2)):
		err = r.publish(now, true, 1)
	case ts.Signed.Expires.Before(now.Add(r.exp.Timestamp / 2)):
		err = r.publish(now, false, 1)
	default:
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tuf.Repository.Refresh: %w", err)
	}
	return true, nil
}

// RestoreMargin is how far RaiseVersions lifts the online roles' versions above the restored
// ones: 2^32. A version goes up by one per signing, and the server signs a role a few times
// per release signed, per deployment step reaching a device and per half-lifetime; even at a
// thousand signings a second without pause, the server a backup came from would need 49 days
// to issue 2^32 versions after it. Versions are int64, so 2^31 restores fit.
const RestoreMargin int64 = 1 << 32

// RaiseVersions re-signs snapshot and timestamp at their versions plus margin, and makes the
// next targets offered for signing (NextTargets) exceed the current version plus margin. A
// server restored from a backup calls it before it serves: a device that fetched metadata the
// server signed after the backup holds versions above the restored ones, and its TUF client
// refuses anything below them as a rollback. Targets are signed offline, so the server cannot
// raise them itself; until the next release is signed, a device that fetched targets signed
// after the backup refuses the restored snapshot.
func (r *Repository) RaiseVersions(margin int64, now time.Time) error {
	if margin < 1 {
		return fmt.Errorf("tuf.Repository.RaiseVersions: margin %d must be positive", margin)
	}
	var cur int64
	if r.st.Targets != nil {
		t, err := parseTargets(r.st.Targets)
		if err != nil {
			return fmt.Errorf("tuf.Repository.RaiseVersions: %w", err)
		}
		cur = t.Signed.Version
	}
	r.st.TargetsAbove = max(r.st.TargetsAbove, cur) + margin
	if r.st.Targets == nil {
		return nil
	}
	if err := r.publish(now, true, margin); err != nil {
		return fmt.Errorf("tuf.Repository.RaiseVersions: %w", err)
	}
	return nil
}

// Versions returns the current targets, snapshot and timestamp versions (0 for each that is
// not signed yet).
func (r *Repository) Versions() (targets, snapshot, timestamp int64, err error) {
	if r.st.Targets == nil {
		return 0, 0, 0, nil
	}
	t, err := parseTargets(r.st.Targets)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("tuf.Repository.Versions: %w", err)
	}
	s, err := (&metadata.Metadata[metadata.SnapshotType]{}).FromBytes(r.st.Snapshot)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("tuf.Repository.Versions: %w", err)
	}
	ts, err := (&metadata.Metadata[metadata.TimestampType]{}).FromBytes(r.st.Timestamp)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("tuf.Repository.Versions: %w", err)
	}
	return t.Signed.Version, s.Signed.Version, ts.Signed.Version, nil
}

// publish signs a new timestamp, and a new snapshot first when withSnapshot, each at its
// current version plus step.
func (r *Repository) publish(now time.Time, withSnapshot bool, step int64) error {
	root, err := parseRoot(r.Root())
	if err != nil {
		return err
	}
	targets, err := parseTargets(r.st.Targets)
	if err != nil {
		return err
	}
	var snapVersion, tsVersion int64 = 1, 1
	if r.st.Snapshot != nil {
		old, err := (&metadata.Metadata[metadata.SnapshotType]{}).FromBytes(r.st.Snapshot)
		if err != nil {
			return err
		}
		snapVersion = old.Signed.Version
		if withSnapshot {
			snapVersion += step
		}
	}
	if r.st.Timestamp != nil {
		old, err := (&metadata.Metadata[metadata.TimestampType]{}).FromBytes(r.st.Timestamp)
		if err != nil {
			return err
		}
		tsVersion = old.Signed.Version + step
	}
	snapBytes := r.st.Snapshot
	if withSnapshot || snapBytes == nil {
		snap := metadata.Snapshot(now.Add(r.exp.Snapshot).UTC().Truncate(time.Second))
		snap.Signed.Version = snapVersion
		snap.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": metadata.MetaFile(targets.Signed.Version)}
		if err := signOnline(root, snap, metadata.SNAPSHOT, r.online.Snapshot); err != nil {
			return err
		}
		if snapBytes, err = snap.ToBytes(true); err != nil {
			return err
		}
	}
	ts := metadata.Timestamp(now.Add(r.exp.Timestamp).UTC().Truncate(time.Second))
	ts.Signed.Version = tsVersion
	sum := sha256.Sum256(snapBytes)
	mf := metadata.MetaFile(snapVersion)
	mf.Length = int64(len(snapBytes))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": mf}
	if err := signOnline(root, ts, metadata.TIMESTAMP, r.online.Timestamp); err != nil {
		return err
	}
	tsBytes, err := ts.ToBytes(true)
	if err != nil {
		return err
	}
	r.st.Snapshot, r.st.Timestamp = snapBytes, tsBytes
	return nil
}

// Files returns the repository's metadata under the names a TUF client with
// consistent snapshots fetches below the metadata URL: N.root.json for
// every root, timestamp.json, V.snapshot.json and V.targets.json (plus the
// unversioned names, for people and tools).
func (r *Repository) Files() (map[string][]byte, error) {
	return StateFiles(r.st)
}

// StateFiles is Repository.Files without opening (and re-verifying) the
// repository: what the server reads on every static request. The state was
// verified when it was stored.
func StateFiles(st State) (map[string][]byte, error) {
	r := &Repository{st: st}
	out := map[string][]byte{}
	for i, b := range r.st.Roots {
		out[strconv.Itoa(i+1)+".root.json"] = b
	}
	if root := r.Root(); root != nil {
		out["root.json"] = root
	}
	if r.st.Targets == nil {
		return out, nil
	}
	t, err := parseTargets(r.st.Targets)
	if err != nil {
		return nil, fmt.Errorf("tuf.StateFiles: %w", err)
	}
	s, err := (&metadata.Metadata[metadata.SnapshotType]{}).FromBytes(r.st.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("tuf.StateFiles: %w", err)
	}
	out["timestamp.json"] = r.st.Timestamp
	out["snapshot.json"] = r.st.Snapshot
	out["targets.json"] = r.st.Targets
	out[strconv.FormatInt(s.Signed.Version, 10)+".snapshot.json"] = r.st.Snapshot
	out[strconv.FormatInt(t.Signed.Version, 10)+".targets.json"] = r.st.Targets
	return out, nil
}
