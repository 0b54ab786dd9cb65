package tuf

import (
	"fmt"
	"slices"
	"time"

	"github.com/rampartsec/rampart/internal/public"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Expiry is how long each role's metadata stays valid after signing.
type Expiry struct {
	Root      time.Duration
	Targets   time.Duration
	Snapshot  time.Duration
	Timestamp time.Duration
	// Director applies to every role of a device's director metadata.
	Director time.Duration
}

// DefaultExpiry returns Rampart's default lifetimes: offline roles long,
// online roles short so that a frozen mirror is noticed within a day.
func DefaultExpiry() Expiry {
	return Expiry{
		Root:      365 * 24 * time.Hour,
		Targets:   90 * 24 * time.Hour,
		Snapshot:  7 * 24 * time.Hour,
		Timestamp: 24 * time.Hour,
		Director:  24 * time.Hour,
	}
}

// RoleKeys names the public keys and threshold of one role.
type RoleKeys struct {
	Keys      []*metadata.Key
	Threshold int
}

func publicKeys(ks []*PrivateKey) []*metadata.Key {
	out := make([]*metadata.Key, len(ks))
	for i, k := range ks {
		out[i] = k.Public()
	}
	return out
}

// NewRoot builds version 1 of the image repository's root: root and targets
// keys come from ks with a threshold each, snapshot and timestamp are the
// server's online keys. It is signed with ks' root keys.
func NewRoot(ks *KeySet, threshold int, online OnlinePublic, expires time.Time) ([]byte, error) {
	roles := map[string]RoleKeys{
		metadata.ROOT:      {Keys: publicKeys(ks.Role(metadata.ROOT)), Threshold: threshold},
		metadata.TARGETS:   {Keys: publicKeys(ks.Role(metadata.TARGETS)), Threshold: threshold},
		metadata.SNAPSHOT:  {Keys: []*metadata.Key{online.Snapshot}, Threshold: 1},
		metadata.TIMESTAMP: {Keys: []*metadata.Key{online.Timestamp}, Threshold: 1},
	}
	b, err := newRoot(ks, roles, true, expires)
	if err != nil {
		return nil, fmt.Errorf("tuf.NewRoot: %w", err)
	}
	return b, nil
}

// NewDirectorRoot builds version 1 of the director's root, the small root
// of trust the agent pins for director metadata: its root role is held by
// the same offline root keys, its targets, snapshot and timestamp roles by
// the server's online director key. A stolen director key therefore cannot
// rotate the director root, and cannot name an image the offline targets
// keys did not sign.
func NewDirectorRoot(ks *KeySet, threshold int, director *metadata.Key, expires time.Time) ([]byte, error) {
	roles := map[string]RoleKeys{
		metadata.ROOT:      {Keys: publicKeys(ks.Role(metadata.ROOT)), Threshold: threshold},
		metadata.TARGETS:   {Keys: []*metadata.Key{director}, Threshold: 1},
		metadata.SNAPSHOT:  {Keys: []*metadata.Key{director}, Threshold: 1},
		metadata.TIMESTAMP: {Keys: []*metadata.Key{director}, Threshold: 1},
	}
	b, err := newRoot(ks, roles, false, expires)
	if err != nil {
		return nil, fmt.Errorf("tuf.NewDirectorRoot: %w", err)
	}
	return b, nil
}

func newRoot(ks *KeySet, roles map[string]RoleKeys, consistent bool, expires time.Time) ([]byte, error) {
	root := metadata.Root(expires.UTC().Truncate(time.Second))
	root.Signed.ConsistentSnapshot = consistent
	for role, rk := range roles {
		if len(rk.Keys) == 0 {
			return nil, fmt.Errorf("role %s has no keys", role)
		}
		if rk.Threshold < 1 || rk.Threshold > len(rk.Keys) {
			return nil, fmt.Errorf("role %s: threshold %d with %d keys", role, rk.Threshold, len(rk.Keys))
		}
		for _, k := range rk.Keys {
			if err := root.Signed.AddKey(k, role); err != nil {
				return nil, fmt.Errorf("add %s key: %w", role, err)
			}
		}
		root.Signed.Roles[role].Threshold = rk.Threshold
	}
	if err := signRole(root, root, metadata.ROOT, ks); err != nil {
		return nil, err
	}
	return root.ToBytes(true)
}

// RootChange describes one root rotation.
type RootChange struct {
	// Add lists new keys per role.
	Add map[string][]*metadata.Key
	// Revoke lists key IDs to remove per role (a compromised or retired key).
	Revoke map[string][]string
	// Threshold sets new thresholds per role; roles not named keep theirs.
	Threshold map[string]int
	// Expires is the new root's expiry.
	Expires time.Time
}

// RotateRoot builds root version N+1 from prev with change applied and
// signs it with every key of ks that the previous or the new root trusts
// for the root role. Clients accept it only when both the previous root's
// threshold and the new root's threshold signed it, which RotateRoot checks
// before returning (ErrThreshold otherwise).
func RotateRoot(prev []byte, change RootChange, ks *KeySet) ([]byte, error) {
	old, err := parseRoot(prev)
	if err != nil {
		return nil, fmt.Errorf("tuf.RotateRoot: %w", err)
	}
	next, err := parseRoot(prev)
	if err != nil {
		return nil, fmt.Errorf("tuf.RotateRoot: %w", err)
	}
	next.ClearSignatures()
	next.Signed.Version++
	next.Signed.Expires = change.Expires.UTC().Truncate(time.Second)
	for role, ids := range change.Revoke {
		for _, id := range ids {
			if err := next.Signed.RevokeKey(id, role); err != nil {
				return nil, fmt.Errorf("tuf.RotateRoot: revoke %s key %s: %w", role, id, err)
			}
		}
	}
	for role, keys := range change.Add {
		for _, k := range keys {
			if err := next.Signed.AddKey(k, role); err != nil {
				return nil, fmt.Errorf("tuf.RotateRoot: add %s key: %w", role, err)
			}
		}
	}
	for role, t := range change.Threshold {
		r, ok := next.Signed.Roles[role]
		if !ok {
			return nil, fmt.Errorf("tuf.RotateRoot: unknown role %s", role)
		}
		r.Threshold = t
	}
	for role, r := range next.Signed.Roles {
		if len(r.KeyIDs) == 0 || r.Threshold < 1 || r.Threshold > len(r.KeyIDs) {
			return nil, fmt.Errorf("tuf.RotateRoot: role %s: threshold %d with %d keys", role, r.Threshold, len(r.KeyIDs))
		}
	}
	// Sign with the union of keys trusted by either version.
	signed := map[string]bool{}
	for _, r := range []*metadata.Metadata[metadata.RootType]{old, next} {
		for _, id := range r.Signed.Roles[metadata.ROOT].KeyIDs {
			k := ks.Key(id)
			if k == nil || signed[id] {
				continue
			}
			if err := signWith(next, k); err != nil {
				return nil, fmt.Errorf("tuf.RotateRoot: %w", err)
			}
			signed[id] = true
		}
	}
	if err := old.VerifyDelegate(metadata.ROOT, next); err != nil {
		return nil, fmt.Errorf("tuf.RotateRoot: previous root's threshold: %w: %w", ErrThreshold, err)
	}
	if err := next.VerifyDelegate(metadata.ROOT, next); err != nil {
		return nil, fmt.Errorf("tuf.RotateRoot: new root's threshold: %w: %w", ErrThreshold, err)
	}
	return next.ToBytes(true)
}

// VerifyRootUpdate checks that next is a valid successor of prev (or, when
// prev is nil, a valid self-signed version 1): the right type and version,
// signed by the thresholds of both, and not expired at now.
func VerifyRootUpdate(prev, next []byte, now time.Time) error {
	n, err := parseRoot(next)
	if err != nil {
		return fmt.Errorf("tuf.VerifyRootUpdate: %w", err)
	}
	if prev == nil {
		if n.Signed.Version != 1 {
			return fmt.Errorf("tuf.VerifyRootUpdate: %w", refused("the first root must be version 1, not %d", n.Signed.Version))
		}
	} else {
		p, err := parseRoot(prev)
		if err != nil {
			return fmt.Errorf("tuf.VerifyRootUpdate: %w", err)
		}
		if n.Signed.Version != p.Signed.Version+1 {
			return fmt.Errorf("tuf.VerifyRootUpdate: %w", refused("the new root must be version %d, not %d", p.Signed.Version+1, n.Signed.Version))
		}
		if err := p.VerifyDelegate(metadata.ROOT, n); err != nil {
			return fmt.Errorf("tuf.VerifyRootUpdate: %w", refused("the new root lacks the signatures of the previous root's keys (%w)", err))
		}
	}
	if err := n.VerifyDelegate(metadata.ROOT, n); err != nil {
		return fmt.Errorf("tuf.VerifyRootUpdate: %w", refused("the root lacks the signatures of its own root keys (%w)", err))
	}
	if n.Signed.IsExpired(now) {
		return fmt.Errorf("tuf.VerifyRootUpdate: %w", refused("the root expired at %s", n.Signed.Expires.Format(time.RFC3339)))
	}
	return nil
}

// refused is metadata a caller signed that fails verification: it is ErrVerify, and its public
// sentence says why, for the API client and the CLI's last line.
func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrVerify, public.Errorf(public.Invalid, format, args...))
}

func parseRoot(b []byte) (*metadata.Metadata[metadata.RootType], error) {
	r, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(b)
	if err != nil {
		return nil, refused("the root is not TUF root metadata (%w)", err)
	}
	return r, nil
}

func parseTargets(b []byte) (*metadata.Metadata[metadata.TargetsType], error) {
	t, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(b)
	if err != nil {
		return nil, refused("the targets are not TUF targets metadata (%w)", err)
	}
	return t, nil
}

func signWith[T metadata.Roles](md *metadata.Metadata[T], k *PrivateKey) error {
	s, err := k.signer()
	if err != nil {
		return err
	}
	if _, err := md.Sign(s); err != nil {
		return fmt.Errorf("sign with %s key: %w", k.Role, err)
	}
	return nil
}

// signRole signs md with every key of ks that root trusts for role and
// checks that the role's threshold is met.
func signRole[T metadata.Roles](root *metadata.Metadata[metadata.RootType], md *metadata.Metadata[T], role string, ks *KeySet) error {
	r, ok := root.Signed.Roles[role]
	if !ok {
		return fmt.Errorf("root has no %s role", role)
	}
	n := 0
	for _, k := range ks.Keys {
		if !slices.Contains(r.KeyIDs, k.ID()) {
			continue
		}
		if err := signWith(md, k); err != nil {
			return err
		}
		n++
	}
	if n < r.Threshold {
		return &ThresholdError{Role: role, Have: n, Need: r.Threshold}
	}
	return nil
}

// ThresholdError is ErrThreshold with its counts: Have keys of Role were present, Need required.
type ThresholdError struct {
	Role       string
	Have, Need int
}

func (e *ThresholdError) Error() string {
	return fmt.Sprintf("%v: %d of %d %s keys", ErrThreshold, e.Have, e.Need, e.Role)
}

func (e *ThresholdError) Is(target error) bool { return target == ErrThreshold }

// signOnline signs md with one online key, which root must trust for role.
func signOnline[T metadata.Roles](root *metadata.Metadata[metadata.RootType], md *metadata.Metadata[T], role string, k *PrivateKey) error {
	return signRole(root, md, role, &KeySet{Keys: []*PrivateKey{k}})
}
