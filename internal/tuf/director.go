package tuf

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// Director signs per-device metadata with the online director key, naming
// exactly which images a device must install. Its root (see
// NewDirectorRoot) is pinned by the agent next to the image repository's
// root. A device installs an image only when the director names it and the
// image repository's offline-signed targets carry the same length and hash.
type Director struct {
	roots [][]byte
	root  *metadata.Metadata[metadata.RootType] // the last of roots, parsed once; read only
	key   *PrivateKey
	exp   time.Duration
	// keyID is key's TUF key ID, computed once: go-tuf's Metadata.Sign derives it again from
	// the public key at every signature, a quarter of an Issue's CPU.
	keyID string
	// short is, per online role, the error signing with key alone meets: nil when the newest
	// root's threshold for the role is at most 1.
	short map[string]error
}

// Assignment is what the director tells one device.
type Assignment struct {
	DeviceID string
	// Version is the device's next director metadata version; the server
	// keeps a per-device counter and must never reuse a value, since the
	// agent refuses versions it has already seen.
	Version int64
	// Release names the release the images belong to ("" for none).
	Release string
	// Images lists what the device must run; empty means "keep what you have".
	Images []Image
	// Deltas lists patches the device may use, by image.
	Deltas []Delta
}

// DirectorFiles is one device's signed director metadata, served below
// <director URL>/<device ID>/ as targets.json, snapshot.json and
// timestamp.json, with the shared N.root.json files beside them.
type DirectorFiles struct {
	Version   int64
	Expires   time.Time
	Targets   []byte
	Snapshot  []byte
	Timestamp []byte
}

var deviceIDRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// NewDirector returns a director over its root chain (oldest first),
// signing with key, which the newest root must trust for targets, snapshot
// and timestamp.
func NewDirector(roots [][]byte, key *PrivateKey, exp Expiry) (*Director, error) {
	if len(roots) == 0 {
		return nil, fmt.Errorf("tuf.NewDirector: no director root")
	}
	for i, b := range roots {
		var prev []byte
		if i > 0 {
			prev = roots[i-1]
		}
		if err := VerifyRootUpdate(prev, b, time.Time{}); err != nil {
			return nil, fmt.Errorf("tuf.NewDirector: root %d: %w", i+1, err)
		}
	}
	root, err := parseRoot(roots[len(roots)-1])
	if err != nil {
		return nil, fmt.Errorf("tuf.NewDirector: %w", err)
	}
	short := map[string]error{}
	for _, role := range []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		if err := trusts(root, role, key); err != nil {
			return nil, fmt.Errorf("tuf.NewDirector: %w", err)
		}
		if need := root.Signed.Roles[role].Threshold; need > 1 {
			short[role] = &ThresholdError{Role: role, Have: 1, Need: need}
		}
	}
	return &Director{roots: roots, root: root, key: key, exp: exp.Director, keyID: key.ID(), short: short}, nil
}

// sign adds the director key's signature over md's canonical signed part, as go-tuf's
// Metadata.Sign does with an ed25519 signer, with the key ID computed once. NewDirector
// checked that the root trusts the key for role; a threshold above one key is refused here,
// as signRole refuses it.
func directorSign[T metadata.Roles](d *Director, md *metadata.Metadata[T], role string) error {
	if err := d.short[role]; err != nil {
		return err
	}
	payload, err := cjson.EncodeCanonical(md.Signed)
	if err != nil {
		return err
	}
	md.Signatures = append(md.Signatures, metadata.Signature{KeyID: d.keyID, Signature: ed25519.Sign(d.key.Private, payload)})
	return nil
}

// Roots returns the director's root chain, oldest first.
func (d *Director) Roots() [][]byte { return d.roots }

// RootFiles returns the director's N.root.json files.
func (d *Director) RootFiles() map[string][]byte {
	out := map[string][]byte{}
	for i, b := range d.roots {
		out[strconv.Itoa(i+1)+".root.json"] = b
	}
	out["root.json"] = d.roots[len(d.roots)-1]
	return out
}

// Issue signs a device's director metadata: targets naming a's images
// (with the image repository's lengths and hashes and a custom object
// binding each entry to the device), and a snapshot and timestamp over it,
// all at version a.Version.
func (d *Director) Issue(a Assignment, now time.Time) (*DirectorFiles, error) {
	if !deviceIDRe.MatchString(a.DeviceID) {
		return nil, fmt.Errorf("tuf.Director.Issue: invalid device id %q", a.DeviceID)
	}
	if a.Version < 1 {
		return nil, fmt.Errorf("tuf.Director.Issue: version %d must be positive", a.Version)
	}
	expires := now.Add(d.exp).UTC().Truncate(time.Second)
	t := metadata.Targets(expires)
	t.Signed.Version = a.Version
	deltas := map[string][]DeltaRef{}
	for _, dl := range a.Deltas {
		if err := dl.validate(); err != nil {
			return nil, fmt.Errorf("tuf.Director.Issue: %w", err)
		}
		deltas[dl.To] = append(deltas[dl.To], DeltaRef{From: dl.From, Path: DeltaPath(dl.From, dl.To)})
	}
	seen := map[string]bool{}
	for _, im := range a.Images {
		if err := im.validate(); err != nil {
			return nil, fmt.Errorf("tuf.Director.Issue: %w", err)
		}
		if seen[im.Component] {
			return nil, fmt.Errorf("tuf.Director.Issue: component %s named twice", im.Component)
		}
		seen[im.Component] = true
		if im.Type == deviceapi.ImageTypeReference {
			continue // a reference value for the verifier: signed in the repository, installed by no one
		}
		custom := im.custom()
		custom.Deltas, custom.Device, custom.Release = deltas[im.SHA256], a.DeviceID, a.Release
		tf, err := targetFile(ImagePath(im.SHA256), im.SHA256, im.Length, custom)
		if err != nil {
			return nil, fmt.Errorf("tuf.Director.Issue: %w", err)
		}
		t.Signed.Targets[tf.Path] = tf
	}
	if err := directorSign(d, t, metadata.TARGETS); err != nil {
		return nil, fmt.Errorf("tuf.Director.Issue: %w", err)
	}
	tb, err := t.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("tuf.Director.Issue: %w", err)
	}
	s := metadata.Snapshot(expires)
	s.Signed.Version = a.Version
	s.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": metadata.MetaFile(a.Version)}
	if err := directorSign(d, s, metadata.SNAPSHOT); err != nil {
		return nil, fmt.Errorf("tuf.Director.Issue: %w", err)
	}
	sb, err := s.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("tuf.Director.Issue: %w", err)
	}
	ts := metadata.Timestamp(expires)
	ts.Signed.Version = a.Version
	mf := metadata.MetaFile(a.Version)
	sum := sha256.Sum256(sb)
	mf.Length = int64(len(sb))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": mf}
	if err := directorSign(d, ts, metadata.TIMESTAMP); err != nil {
		return nil, fmt.Errorf("tuf.Director.Issue: %w", err)
	}
	tsb, err := ts.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("tuf.Director.Issue: %w", err)
	}
	return &DirectorFiles{Version: a.Version, Expires: expires, Targets: tb, Snapshot: sb, Timestamp: tsb}, nil
}

// NeedsRefresh reports whether a device's director metadata has less than
// half of its lifetime left and should be re-issued (with a new version).
func (d *Director) NeedsRefresh(f *DirectorFiles, now time.Time) bool {
	return f == nil || f.Expires.Before(now.Add(d.exp/2))
}

// Files returns the files served below <director URL>/<device ID>/.
func (f *DirectorFiles) Files() map[string][]byte {
	return map[string][]byte{"targets.json": f.Targets, "snapshot.json": f.Snapshot, "timestamp.json": f.Timestamp}
}
