package tuf

import (
	"fmt"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Rotation is what an operator asks of an offline key rotation.
type Rotation struct {
	// Revoke lists root or targets key IDs, or unique prefixes of them, to revoke.
	Revoke []string
	// AddRoot and AddTargets are how many new root and targets keys to create.
	AddRoot, AddTargets int
	// RootThreshold and TargetsThreshold set new thresholds; 0 keeps the current one.
	RootThreshold, TargetsThreshold int
	// Expires is the new roots' expiry.
	Expires time.Time
}

// Empty reports whether the rotation changes nothing.
func (r Rotation) Empty() bool {
	return len(r.Revoke) == 0 && r.AddRoot == 0 && r.AddTargets == 0 && r.RootThreshold == 0 && r.TargetsThreshold == 0
}

// RotationPlan is a rotation resolved against the image repository's current root: which keys
// change in which root. The image root takes every change; the director's root takes only the
// changes to the root role, since its other roles are held by the server's online director key.
type RotationPlan struct {
	Image    RootChange
	Director RootChange
	// Fresh holds the new private keys; keep them before the server trusts them.
	Fresh *KeySet
	// Revoked lists the full IDs of the revoked keys.
	Revoked []string
}

// RotatesDirector reports whether the director's root changes too.
func (p RotationPlan) RotatesDirector() bool {
	return len(p.Director.Add)+len(p.Director.Revoke)+len(p.Director.Threshold) > 0
}

// PlanRotation resolves r against the image repository's current root (key ID prefixes to
// keys and their roles) and creates the new keys. It signs nothing.
func PlanRotation(imageRoot []byte, r Rotation) (RotationPlan, error) {
	cur, err := parseRoot(imageRoot)
	if err != nil {
		return RotationPlan{}, fmt.Errorf("tuf.PlanRotation: %w", err)
	}
	newChange := func() RootChange {
		return RootChange{Add: map[string][]*metadata.Key{}, Revoke: map[string][]string{}, Threshold: map[string]int{}, Expires: r.Expires}
	}
	p := RotationPlan{Image: newChange(), Director: newChange(), Fresh: &KeySet{}}
	for _, prefix := range r.Revoke {
		id, role, err := findKey(cur, prefix)
		if err != nil {
			return RotationPlan{}, err
		}
		p.Image.Revoke[role] = append(p.Image.Revoke[role], id)
		if role == metadata.ROOT {
			p.Director.Revoke[role] = append(p.Director.Revoke[role], id)
		}
		p.Revoked = append(p.Revoked, id)
	}
	for _, add := range []struct {
		role string
		n    int
	}{{metadata.ROOT, r.AddRoot}, {metadata.TARGETS, r.AddTargets}} {
		for range add.n {
			k, err := GenerateKey(add.role)
			if err != nil {
				return RotationPlan{}, fmt.Errorf("tuf.PlanRotation: %w", err)
			}
			p.Fresh.Keys = append(p.Fresh.Keys, k)
			p.Image.Add[add.role] = append(p.Image.Add[add.role], k.Public())
			if add.role == metadata.ROOT {
				p.Director.Add[add.role] = append(p.Director.Add[add.role], k.Public())
			}
		}
	}
	if r.RootThreshold > 0 {
		p.Image.Threshold[metadata.ROOT] = r.RootThreshold
		p.Director.Threshold[metadata.ROOT] = r.RootThreshold
	}
	if r.TargetsThreshold > 0 {
		p.Image.Threshold[metadata.TARGETS] = r.TargetsThreshold
	}
	return p, nil
}

// Sign builds the next image root, and the next director root when it changes (nil
// otherwise), signed with the keys of ks and the plan's new keys (RotateRoot).
func (p RotationPlan) Sign(imageRoot, directorRoot []byte, ks *KeySet) (nextImage, nextDirector []byte, err error) {
	all := &KeySet{Keys: append(append([]*PrivateKey(nil), ks.Keys...), p.Fresh.Keys...)}
	if nextImage, err = RotateRoot(imageRoot, p.Image, all); err != nil {
		return nil, nil, err
	}
	if p.RotatesDirector() {
		if nextDirector, err = RotateRoot(directorRoot, p.Director, all); err != nil {
			return nil, nil, fmt.Errorf("director root: %w", err)
		}
	}
	return nextImage, nextDirector, nil
}

// findKey resolves a key ID prefix among the root's root and targets keys.
func findKey(root *metadata.Metadata[metadata.RootType], prefix string) (string, string, error) {
	var id, role string
	for _, r := range []string{metadata.ROOT, metadata.TARGETS} {
		for _, k := range root.Signed.Roles[r].KeyIDs {
			if prefix != "" && strings.HasPrefix(k, prefix) {
				if id != "" {
					return "", "", fmt.Errorf("key ID prefix %s is ambiguous", prefix)
				}
				id, role = k, r
			}
		}
	}
	if id == "" {
		return "", "", fmt.Errorf("no root or targets key has an ID starting with %s", prefix)
	}
	return id, role, nil
}

// RootSummary is what an operator reads of a root after a rotation.
type RootSummary struct {
	Version                       int64
	RootKeys, RootThreshold       int
	TargetsKeys, TargetsThreshold int
}

// SummarizeRoot reads a root's version and its root and targets keys and thresholds.
func SummarizeRoot(b []byte) (RootSummary, error) {
	r, err := parseRoot(b)
	if err != nil {
		return RootSummary{}, fmt.Errorf("tuf.SummarizeRoot: %w", err)
	}
	s := RootSummary{Version: r.Signed.Version}
	if role := r.Signed.Roles[metadata.ROOT]; role != nil {
		s.RootKeys, s.RootThreshold = len(role.KeyIDs), role.Threshold
	}
	if role := r.Signed.Roles[metadata.TARGETS]; role != nil {
		s.TargetsKeys, s.TargetsThreshold = len(role.KeyIDs), role.Threshold
	}
	return s, nil
}
