package deviceapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The update metadata: target paths, the "custom" objects of image and delta
// targets in the image repository's and the director's TUF metadata, and
// version ordering.

// ImageCustom is the "custom" object of an image target. Both the image
// repository (signed offline) and the director (signed online) carry it.
type ImageCustom struct {
	Component       string     `json:"component"`
	Version         string     `json:"version"`
	SecurityVersion uint64     `json:"security_version"`
	Deltas          []DeltaRef `json:"deltas,omitempty"`
	// Type names who installs the image on the device (ImageTypeDirectory when empty,
	// ImageTypeRAUC, or ImageTypeModulePrefix+NAME); the agent refuses a type it cannot install.
	Type string `json:"type,omitempty"`
	// RAUCManifestHash is the lowercase hex SHA-256 of a RAUC bundle's manifest (what RAUC
	// calls the manifest hash), for ImageTypeRAUC only: the agent checks the bundle it hands
	// to RAUC against it and passes it on as require-manifest-hash.
	RAUCManifestHash string `json:"rauc_manifest_hash,omitempty"`
	// Device and Release appear only in director metadata: the device the
	// entry is for, and the release the image belongs to.
	Device  string `json:"device,omitempty"`
	Release string `json:"release,omitempty"`
}

// DeltaRef names a patch target that produces this image from an earlier one.
type DeltaRef struct {
	From string `json:"from"`
	Path string `json:"path"`
}

// DeltaCustom is the "custom" object of a delta target.
type DeltaCustom struct {
	DeltaFrom string `json:"delta_from"`
	DeltaTo   string `json:"delta_to"`
}

// ImagePath is the target path of an image, by its hex SHA-256.
func ImagePath(sha256hex string) string { return "images/" + sha256hex }

// DeltaPath is the target path of the patch from one image to another.
func DeltaPath(from, to string) string { return "deltas/" + from + "-" + to + ".zst" }

var (
	// SHA256Re matches a lowercase hex SHA-256.
	SHA256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// ComponentRe matches a component name, safe as a file name.
	ComponentRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	versionRe   = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+){0,3})(?:-([0-9A-Za-z.-]{1,64}))?(?:\+[0-9A-Za-z.-]{1,64})?$`)
)

// ErrVersion means a version string is not of the form 1.2.3[-pre][+build].
var ErrVersion = errors.New("deviceapi: invalid version")

// ValidVersion reports whether v is a dotted numeric version with optional
// pre-release and build suffixes.
func ValidVersion(v string) bool { return versionRe.MatchString(v) }

// CompareVersions orders two versions like semantic versioning: numeric
// fields compared as numbers (missing fields are zero), a pre-release sorts
// before the release, build metadata is ignored.
func CompareVersions(a, b string) (int, error) {
	ma, mb := versionRe.FindStringSubmatch(a), versionRe.FindStringSubmatch(b)
	if ma == nil || mb == nil {
		return 0, fmt.Errorf("deviceapi.CompareVersions: %w: %q or %q", ErrVersion, a, b)
	}
	na, nb := strings.Split(ma[1], "."), strings.Split(mb[1], ".")
	for i := range max(len(na), len(nb)) {
		x, y := field(na, i), field(nb, i)
		if x != y {
			if x < y {
				return -1, nil
			}
			return 1, nil
		}
	}
	switch pa, pb := ma[2], mb[2]; {
	case pa == pb:
		return 0, nil
	case pa == "":
		return 1, nil
	case pb == "":
		return -1, nil
	case pa < pb:
		return -1, nil
	default:
		return 1, nil
	}
}

func field(f []string, i int) uint64 {
	if i >= len(f) {
		return 0
	}
	n, err := strconv.ParseUint(f[i], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Image types: who installs an image on the device.
const (
	// ImageTypeDirectory is the agent's own A/B slot folders (development and the simulator).
	ImageTypeDirectory = "directory"
	// ImageTypeRAUC is a RAUC bundle, installed by the device's RAUC service over D-Bus.
	ImageTypeRAUC = "rauc-bundle"
	// ImageTypeModulePrefix starts the type of an artifact installed by a Mender update
	// module (protocol v3) of that name: "module:script", "module:deb".
	ImageTypeModulePrefix = "module:"
	// ImageTypeReference is a file the release holds only as a reference value for
	// attestation (the kernel, the agent's binary, the kernel modules inside a RAUC bundle's
	// root file system): the image repository signs it, the verifier appraises measurements
	// against it, and the director never names it to a device, so nothing installs it.
	ImageTypeReference = "reference"
)

// moduleNameRe matches an update module's name, a file name in the module folder.
var moduleNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidImageType reports whether t is an image type ("" is not: say directory).
func ValidImageType(t string) bool {
	switch {
	case t == ImageTypeDirectory, t == ImageTypeRAUC, t == ImageTypeReference:
		return true
	case strings.HasPrefix(t, ImageTypeModulePrefix):
		return moduleNameRe.MatchString(strings.TrimPrefix(t, ImageTypeModulePrefix))
	}
	return false
}

// ImageType returns the image's type, ImageTypeDirectory for metadata signed without one.
func (c ImageCustom) ImageType() string {
	if c.Type == "" {
		return ImageTypeDirectory
	}
	return c.Type
}

// ParseImageCustom decodes an image target's custom object strictly.
func ParseImageCustom(tf *metadata.TargetFiles) (ImageCustom, error) {
	var c ImageCustom
	if tf == nil || tf.Custom == nil {
		return c, fmt.Errorf("deviceapi.ParseImageCustom: target has no custom object")
	}
	dec := json.NewDecoder(strings.NewReader(string(*tf.Custom)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("deviceapi.ParseImageCustom: %w", err)
	}
	if !ComponentRe.MatchString(c.Component) {
		return c, fmt.Errorf("deviceapi.ParseImageCustom: invalid component %q", c.Component)
	}
	if !ValidVersion(c.Version) {
		return c, fmt.Errorf("deviceapi.ParseImageCustom: %w: %q", ErrVersion, c.Version)
	}
	if c.Type != "" && !ValidImageType(c.Type) {
		return c, fmt.Errorf("deviceapi.ParseImageCustom: invalid image type %q", c.Type)
	}
	if (c.ImageType() == ImageTypeRAUC) != (c.RAUCManifestHash != "") || (c.RAUCManifestHash != "" && !SHA256Re.MatchString(c.RAUCManifestHash)) {
		return c, fmt.Errorf("deviceapi.ParseImageCustom: a rauc-bundle image, and only one, carries a manifest hash (lowercase hex SHA-256)")
	}
	for _, d := range c.Deltas {
		if !SHA256Re.MatchString(d.From) || !strings.HasPrefix(d.Path, "deltas/") {
			return c, fmt.Errorf("deviceapi.ParseImageCustom: invalid delta reference")
		}
	}
	return c, nil
}

// ParseDeltaCustom decodes a delta target's custom object.
func ParseDeltaCustom(tf *metadata.TargetFiles) (DeltaCustom, bool) {
	var c DeltaCustom
	if tf == nil || tf.Custom == nil || json.Unmarshal(*tf.Custom, &c) != nil || c.DeltaFrom == "" {
		return c, false
	}
	return c, true
}
