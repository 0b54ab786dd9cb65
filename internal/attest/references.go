package attest

// ReleasedImage is one image of a product's signed or revoked release, as the release
// service lists them (release.ReleasedImages).
type ReleasedImage struct {
	SHA256    string
	Component string
	Release   string
	Revoked   bool
	Newest    bool // in the product's newest signed release
	// Authenticode is the image's Authenticode SHA-256 when it is a PE/EFI binary: the
	// digest the firmware measures when it loads it.
	Authenticode string
}

// DeriveReferences turns released images into reference values. One image can belong to
// several releases (a bootloader that did not change): its digest is revoked only when every
// release holding it is revoked, and outdated only when none of them is the newest. A PE/EFI
// image is known by its Authenticode digest too (a boot reference, Authenticode set).
func DeriveReferences(images []ReleasedImage) map[string]Reference {
	out := deriveBy(images, func(im ReleasedImage) string { return im.SHA256 })
	for d, ref := range deriveBy(images, func(im ReleasedImage) string { return im.Authenticode }) {
		if d == "" {
			continue
		}
		ref.Authenticode = true
		out[d] = ref
	}
	return out
}

func deriveBy(images []ReleasedImage, key func(ReleasedImage) string) map[string]Reference {
	type acc struct {
		ref          Reference
		good, newest bool
	}
	seen := make(map[string]*acc, len(images))
	for _, im := range images {
		k := key(im)
		a, ok := seen[k]
		if !ok {
			a = &acc{ref: Reference{Name: im.Component, Version: im.Release}}
			seen[k] = a
		}
		if !im.Revoked {
			if !a.good || im.Newest {
				a.ref.Version = im.Release // name the best release holding it
			}
			a.good = true
		}
		a.newest = a.newest || im.Newest
	}
	out := make(map[string]Reference, len(seen))
	for digest, a := range seen {
		a.ref.Revoked = !a.good
		a.ref.Outdated = a.good && !a.newest
		out[digest] = a.ref
	}
	return out
}
