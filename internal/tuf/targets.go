package tuf

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

// Image describes one content-addressed artifact as it appears in signed
// targets metadata.
type Image struct {
	SHA256          string // lowercase hex
	Length          int64
	Component       string
	Version         string
	SecurityVersion uint64
	// Type is who installs the image (deviceapi.ImageType*); "" means directory.
	Type string
	// RAUCManifestHash is a rauc-bundle's manifest hash (lowercase hex SHA-256).
	RAUCManifestHash string
}

// custom is the image's custom object in targets metadata. A directory image carries no
// type, so that metadata signed before image types existed reads the same.
func (im Image) custom() ImageCustom {
	c := ImageCustom{Component: im.Component, Version: im.Version, SecurityVersion: im.SecurityVersion, RAUCManifestHash: im.RAUCManifestHash}
	if im.Type != deviceapi.ImageTypeDirectory {
		c.Type = im.Type
	}
	return c
}

// Delta describes a patch from one image to another of the same component.
type Delta struct {
	From   string // hex SHA-256 of the base image
	To     string // hex SHA-256 of the image the patch produces
	SHA256 string // hex SHA-256 of the patch itself
	Length int64
}

// Aliases of the wire types shared with the agent.
type (
	ImageCustom = deviceapi.ImageCustom
	DeltaRef    = deviceapi.DeltaRef
	DeltaCustom = deviceapi.DeltaCustom
)

// ImagePath is the target path of an image.
func ImagePath(sha256hex string) string { return deviceapi.ImagePath(sha256hex) }

// DeltaPath is the target path of the patch from one image to another.
func DeltaPath(from, to string) string { return deviceapi.DeltaPath(from, to) }

// ParseImageCustom decodes an image target's custom object.
func ParseImageCustom(tf *metadata.TargetFiles) (ImageCustom, error) {
	return deviceapi.ParseImageCustom(tf)
}

var (
	hexSHA256 = deviceapi.SHA256Re
	nameRe    = deviceapi.ComponentRe
)

func (im Image) validate() error {
	if !hexSHA256.MatchString(im.SHA256) {
		return fmt.Errorf("image sha256 %q is not lowercase hex", im.SHA256)
	}
	if im.Length < 0 {
		return fmt.Errorf("image %s: negative length", im.SHA256)
	}
	if !nameRe.MatchString(im.Component) {
		return fmt.Errorf("image %s: invalid component %q", im.SHA256, im.Component)
	}
	if !deviceapi.ValidVersion(im.Version) {
		return fmt.Errorf("image %s: invalid version %q", im.SHA256, im.Version)
	}
	if im.Type != "" && !deviceapi.ValidImageType(im.Type) {
		return fmt.Errorf("image %s: invalid type %q", im.SHA256, im.Type)
	}
	if (im.Type == deviceapi.ImageTypeRAUC) != (im.RAUCManifestHash != "") || (im.RAUCManifestHash != "" && !hexSHA256.MatchString(im.RAUCManifestHash)) {
		return fmt.Errorf("image %s: a rauc-bundle image, and only one, has a manifest hash (lowercase hex SHA-256)", im.SHA256)
	}
	return nil
}

func (d Delta) validate() error {
	for _, s := range []string{d.From, d.To, d.SHA256} {
		if !hexSHA256.MatchString(s) {
			return fmt.Errorf("delta hash %q is not lowercase hex", s)
		}
	}
	if d.Length < 0 {
		return fmt.Errorf("delta %s: negative length", d.SHA256)
	}
	return nil
}

func targetFile(path, sha256hex string, length int64, custom any) (*metadata.TargetFiles, error) {
	sum, err := hex.DecodeString(sha256hex)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(custom)
	if err != nil {
		return nil, err
	}
	c := json.RawMessage(raw)
	return &metadata.TargetFiles{
		Length: length,
		Hashes: metadata.Hashes{"sha256": sum},
		Path:   path,
		Custom: &c,
	}, nil
}

// BuildTargets returns the unsigned payload of the next image-repository
// targets metadata: every target of prev (nil for the first) plus the given
// images and deltas, at version prev+1, expiring at expires. The payload is
// what `rampart release sign` signs offline with SignTargets.
func BuildTargets(prev []byte, images []Image, deltas []Delta, expires time.Time) ([]byte, error) {
	next := metadata.Targets(expires.UTC().Truncate(time.Second))
	if prev != nil {
		p, err := parseTargets(prev)
		if err != nil {
			return nil, fmt.Errorf("tuf.BuildTargets: %w", err)
		}
		next.Signed.Targets = p.Signed.Targets
		next.Signed.Version = p.Signed.Version + 1
	}
	if next.Signed.Targets == nil {
		next.Signed.Targets = map[string]*metadata.TargetFiles{}
	}
	for _, im := range images {
		if err := im.validate(); err != nil {
			return nil, fmt.Errorf("tuf.BuildTargets: %w", err)
		}
		path := ImagePath(im.SHA256)
		custom := im.custom()
		if old, ok := next.Signed.Targets[path]; ok {
			oc, err := ParseImageCustom(old)
			if err != nil {
				return nil, fmt.Errorf("tuf.BuildTargets: %s: %w", path, err)
			}
			if old.Length != im.Length || oc.Component != im.Component || oc.Version != im.Version || oc.SecurityVersion != im.SecurityVersion ||
				oc.Type != custom.Type || oc.RAUCManifestHash != custom.RAUCManifestHash {
				return nil, fmt.Errorf("tuf.BuildTargets: %s is already signed with other attributes", path)
			}
			custom.Deltas = oc.Deltas
		}
		tf, err := targetFile(path, im.SHA256, im.Length, custom)
		if err != nil {
			return nil, fmt.Errorf("tuf.BuildTargets: %w", err)
		}
		next.Signed.Targets[path] = tf
	}
	for _, d := range deltas {
		if err := d.validate(); err != nil {
			return nil, fmt.Errorf("tuf.BuildTargets: %w", err)
		}
		to, ok := next.Signed.Targets[ImagePath(d.To)]
		if !ok {
			return nil, fmt.Errorf("tuf.BuildTargets: delta to unknown image %s", d.To)
		}
		if _, ok := next.Signed.Targets[ImagePath(d.From)]; !ok {
			return nil, fmt.Errorf("tuf.BuildTargets: delta from unknown image %s", d.From)
		}
		path := DeltaPath(d.From, d.To)
		tf, err := targetFile(path, d.SHA256, d.Length, DeltaCustom{DeltaFrom: d.From, DeltaTo: d.To})
		if err != nil {
			return nil, fmt.Errorf("tuf.BuildTargets: %w", err)
		}
		next.Signed.Targets[path] = tf
		c, err := ParseImageCustom(to)
		if err != nil {
			return nil, fmt.Errorf("tuf.BuildTargets: %w", err)
		}
		if !slices.ContainsFunc(c.Deltas, func(r DeltaRef) bool { return r.From == d.From }) {
			c.Deltas = append(c.Deltas, DeltaRef{From: d.From, Path: path})
			slices.SortFunc(c.Deltas, func(a, b DeltaRef) int {
				if a.From < b.From {
					return -1
				}
				if a.From > b.From {
					return 1
				}
				return 0
			})
		}
		ntf, err := targetFile(to.Path, d.To, to.Length, c)
		if err != nil {
			return nil, fmt.Errorf("tuf.BuildTargets: %w", err)
		}
		next.Signed.Targets[to.Path] = ntf
	}
	b, err := next.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("tuf.BuildTargets: %w", err)
	}
	return b, nil
}

// TargetsSummary lists what a targets payload would sign, for a human to
// review before signing offline.
type TargetsSummary struct {
	Version int64
	Expires time.Time
	Images  []Image
	Deltas  int
}

// SummarizeTargets decodes a targets payload for review.
func SummarizeTargets(payload []byte) (TargetsSummary, error) {
	t, err := parseTargets(payload)
	if err != nil {
		return TargetsSummary{}, fmt.Errorf("tuf.SummarizeTargets: %w", err)
	}
	s := TargetsSummary{Version: t.Signed.Version, Expires: t.Signed.Expires}
	for path, tf := range t.Signed.Targets {
		if _, ok := deviceapi.ParseDeltaCustom(tf); ok {
			s.Deltas++
			continue
		}
		c, err := ParseImageCustom(tf)
		if err != nil {
			return TargetsSummary{}, fmt.Errorf("tuf.SummarizeTargets: %w", refused("target %s: %w", path, err))
		}
		s.Images = append(s.Images, Image{SHA256: hex.EncodeToString(tf.Hashes["sha256"]), Length: tf.Length, Component: c.Component, Version: c.Version,
			SecurityVersion: c.SecurityVersion, Type: c.ImageType(), RAUCManifestHash: c.RAUCManifestHash})
	}
	slices.SortFunc(s.Images, func(a, b Image) int {
		switch {
		case a.Component+a.Version < b.Component+b.Version:
			return -1
		case a.Component+a.Version > b.Component+b.Version:
			return 1
		}
		return 0
	})
	return s, nil
}

// SignTargets signs a targets payload offline with the targets keys of ks
// that root trusts, and fails with ErrThreshold when fewer than the
// threshold are present.
func SignTargets(root, payload []byte, ks *KeySet) ([]byte, error) {
	r, err := parseRoot(root)
	if err != nil {
		return nil, fmt.Errorf("tuf.SignTargets: %w", err)
	}
	t, err := parseTargets(payload)
	if err != nil {
		return nil, fmt.Errorf("tuf.SignTargets: %w", err)
	}
	t.ClearSignatures()
	if err := signRole(r, t, metadata.TARGETS, ks); err != nil {
		if te, ok := errors.AsType[*ThresholdError](err); ok {
			return nil, public.Wrap(fmt.Errorf("tuf.SignTargets: %w", err), public.Invalid,
				"not enough signing keys: the key folder holds %d of the %d targets keys the root requires", te.Have, te.Need)
		}
		return nil, fmt.Errorf("tuf.SignTargets: %w", err)
	}
	b, err := t.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("tuf.SignTargets: %w", err)
	}
	return b, nil
}
