package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The tables of signed updates (migration 0200_updates.sql): content-addressed images, releases
// grouping them per product with the deltas built at signing time, each tenant's TUF repository
// (tuf_repos.go), each device's director metadata (director.go) and its install reports
// (install_reports.go). internal/release decides what goes in them (TUF, signing, deltas); the
// SQL is here.

// Release states.
const (
	ReleaseDraft   = "draft"
	ReleaseSigned  = "signed"
	ReleaseRevoked = "revoked"
)

// Image is a stored, content-addressed artifact.
type Image struct {
	SHA256          string
	Component       string
	Version         string
	SecurityVersion uint64
	Length          int64
	CreatedAt       time.Time
	// Authenticode is the lowercase hex Authenticode SHA-256 of a PE/EFI image, the digest
	// UEFI firmware measures; empty for other images.
	Authenticode string
	// Type is who installs the image on the device: "directory", "rauc-bundle" or
	// "module:NAME" (deviceapi.ImageType*).
	Type string
	// RAUCManifestHash is a rauc-bundle's manifest hash (lowercase hex SHA-256); empty otherwise.
	RAUCManifestHash string
}

// Delta is a patch from one image to another, built when a release is prepared for signing.
type Delta struct {
	From   string // hex SHA-256 of the base image
	To     string // hex SHA-256 of the image the patch produces
	SHA256 string // hex SHA-256 of the patch itself
	Length int64
}

// Release is a versioned set of images of a product.
type Release struct {
	ID             string
	Product        string
	Version        string
	State          string
	TargetsVersion int64
	RevokedReason  string
	CreatedAt      time.Time
	SignedAt       *time.Time
	RevokedAt      *time.Time
	Images         []Image
	Deltas         []Delta
	// Demoted is set by a revocation only: the devices whose normal certificates it demoted
	// to update-only (DemoteRevoked), for the caller to wake so they attest again.
	Demoted []string
}

const imageColumns = `sha256, component, version, security_version, length, created_at, authenticode, type, rauc_manifest_hash`

func scanImage(row rowScanner) (Image, error) {
	var im Image
	var sv, at int64
	if err := row.Scan(&im.SHA256, &im.Component, &im.Version, &sv, &im.Length, &at, &im.Authenticode, &im.Type, &im.RAUCManifestHash); err != nil {
		return Image{}, err
	}
	im.SecurityVersion, im.CreatedAt = uint64(sv), fromMicros(at)
	return im, nil
}

// Image returns one of a tenant's images by its hex SHA-256; ErrNotFound when there is none.
func (s *Store) Image(ctx context.Context, tenantID, sum string) (Image, error) {
	im, err := scanImage(s.db.QueryRowContext(ctx, `SELECT `+imageColumns+` FROM images WHERE tenant_id = $1 AND sha256 = $2`, tenantID, sum))
	if err != nil {
		return Image{}, s.mapErr(err)
	}
	return im, nil
}

// AddImage records an image and audits it, unless the tenant already has an image with the
// same bytes: then nothing is written and the stored image is returned, for the caller to
// compare.
func (s *Store) AddImage(ctx context.Context, actor Actor, tenantID string, im Image) (Image, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		old, err := scanImage(tx.QueryRowContext(ctx, `SELECT `+imageColumns+` FROM images WHERE tenant_id = $1 AND sha256 = $2`, tenantID, im.SHA256))
		if err == nil {
			im = old
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if im.Type == "" {
			im.Type = "directory"
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO images (tenant_id, sha256, component, version, security_version, length, created_at, authenticode, type, rauc_manifest_hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, tenantID, im.SHA256, im.Component, im.Version, int64(im.SecurityVersion), im.Length,
			micros(im.CreatedAt), im.Authenticode, im.Type, im.RAUCManifestHash); err != nil {
			return err
		}
		details := Details{"component": im.Component, "version": im.Version, "security_version": im.SecurityVersion, "length": im.Length, "type": im.Type}
		if im.RAUCManifestHash != "" {
			details["rauc_manifest_hash"] = im.RAUCManifestHash
		}
		if im.Authenticode != "" {
			details["authenticode"] = im.Authenticode
		}
		return s.appendAudit(ctx, tx, tenantID, actor, "image.add", "image/"+im.SHA256, details)
	})
	if err != nil {
		return Image{}, fmt.Errorf("store.AddImage: %w", s.mapErr(err))
	}
	return im, nil
}

// HasImage reports whether the tenant has an image with the given hex SHA-256.
func (s *Store) HasImage(ctx context.Context, tenantID, sum string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(s.quick(ctx), `SELECT COUNT(*) FROM images WHERE tenant_id = $1 AND sha256 = $2`, tenantID, sum).Scan(&n); err != nil {
		return false, fmt.Errorf("store.HasImage: %w", err)
	}
	return n == 1, nil
}

// CreateRelease records a draft release of the product with its images (one per component, as
// the caller checked) and audits it.
func (s *Store) CreateRelease(ctx context.Context, actor Actor, tenantID, productID string, rel Release) error {
	sums := make([]string, len(rel.Images))
	for i, im := range rel.Images {
		sums[i] = im.SHA256
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO releases (id, tenant_id, product_id, version, state, targets_version, revoked_reason, created_at)
			VALUES ($1, $2, $3, $4, $5, 0, '', $6)`, rel.ID, tenantID, productID, rel.Version, ReleaseDraft, micros(rel.CreatedAt)); err != nil {
			return err
		}
		for _, im := range rel.Images {
			if _, err := tx.ExecContext(ctx, `INSERT INTO release_images (release_id, component, sha256) VALUES ($1, $2, $3)`,
				rel.ID, im.Component, im.SHA256); err != nil {
				return err
			}
		}
		return s.appendAudit(ctx, tx, tenantID, actor, "release.create", "release/"+rel.ID,
			Details{"product": rel.Product, "version": rel.Version, "images": sums})
	})
	if err != nil {
		return fmt.Errorf("store.CreateRelease: %w", s.mapErr(err))
	}
	return nil
}

const releaseColumns = `r.id, p.name, r.version, r.state, r.targets_version, r.revoked_reason, r.created_at, r.signed_at, r.revoked_at`

func scanRelease(row rowScanner) (Release, error) {
	var r Release
	var at int64
	var signed, revoked sql.NullInt64
	if err := row.Scan(&r.ID, &r.Product, &r.Version, &r.State, &r.TargetsVersion, &r.RevokedReason, &at, &signed, &revoked); err != nil {
		return Release{}, err
	}
	r.CreatedAt, r.SignedAt, r.RevokedAt = fromMicros(at), fromNullMicros(signed), fromNullMicros(revoked)
	return r, nil
}

// getRelease reads one release of a tenant's product with its images and deltas; a missing
// release is sql.ErrNoRows.
func getRelease(ctx context.Context, q querier, tenantID, product, version string) (Release, error) {
	r, err := scanRelease(q.QueryRowContext(ctx, `SELECT `+releaseColumns+`
		FROM releases r JOIN products p ON p.id = r.product_id
		WHERE r.tenant_id = $1 AND p.name = $2 AND r.version = $3`, tenantID, product, version))
	if err != nil {
		return Release{}, err
	}
	rows, err := q.QueryContext(ctx, `SELECT i.sha256, i.component, i.version, i.security_version, i.length, i.created_at, i.authenticode, i.type, i.rauc_manifest_hash
		FROM release_images ri JOIN images i ON i.sha256 = ri.sha256 AND i.tenant_id = $1
		WHERE ri.release_id = $2 ORDER BY ri.component`, tenantID, r.ID)
	if err != nil {
		return Release{}, err
	}
	if r.Images, err = scanAll(rows, scanImage); err != nil {
		return Release{}, err
	}
	rows, err = q.QueryContext(ctx, `SELECT from_sha256, to_sha256, sha256, length FROM release_deltas WHERE release_id = $1 ORDER BY from_sha256, to_sha256`, r.ID)
	if err != nil {
		return Release{}, err
	}
	r.Deltas, err = scanAll(rows, func(row rowScanner) (Delta, error) {
		var d Delta
		err := row.Scan(&d.From, &d.To, &d.SHA256, &d.Length)
		return d, err
	})
	return r, err
}

// ReleaseByVersion returns one release of a tenant's product with its images and deltas;
// ErrNotFound when there is none.
func (s *Store) ReleaseByVersion(ctx context.Context, tenantID, product, version string) (Release, error) {
	r, err := getRelease(ctx, s.db, tenantID, product, version)
	if err != nil {
		return Release{}, fmt.Errorf("store.ReleaseByVersion: %w", s.mapErr(err))
	}
	return r, nil
}

// ListReleases returns up to limit releases of a tenant's product in the order they were
// created, with their images (not their deltas), after the release whose ID is after ("" for
// the first page), and the cursor of the next page ("" when this is the last). An unknown
// product is ErrNotFound.
func (s *Store) ListReleases(ctx context.Context, tenantID, product, after string, limit int) ([]Release, string, error) {
	var productID string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM products WHERE tenant_id = $1 AND name = $2`, tenantID, product).Scan(&productID)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListReleases: %w", s.mapErr(err))
	}
	// Keyset paging on (created_at, id); the cursor is the last release's ID.
	rows, err := s.db.QueryContext(ctx, `SELECT `+releaseColumns+`
		FROM releases r JOIN products p ON p.id = r.product_id
		WHERE r.tenant_id = $1 AND r.product_id = $2
		  AND ($3 = '' OR (r.created_at, r.id) > (SELECT c.created_at, c.id FROM releases c WHERE c.id = $3 AND c.tenant_id = $1))
		ORDER BY r.created_at, r.id LIMIT $4`, tenantID, productID, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListReleases: %w", err)
	}
	out, err := scanAll(rows, scanRelease)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListReleases: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	if len(out) == 0 {
		return out, "", nil
	}
	byID := make(map[string]int, len(out))
	for i, r := range out {
		byID[r.ID] = i
	}
	// The page's images in one query: every image of the product's releases in the page's range.
	rows, err = s.db.QueryContext(ctx, `SELECT ri.release_id, i.sha256, i.component, i.version, i.security_version, i.length, i.created_at
		FROM release_images ri JOIN releases r ON r.id = ri.release_id
		JOIN images i ON i.sha256 = ri.sha256 AND i.tenant_id = r.tenant_id
		WHERE r.tenant_id = $1 AND r.product_id = $2 AND (r.created_at, r.id) >= ($3, $4) AND (r.created_at, r.id) <= ($5, $6)
		ORDER BY ri.component`, tenantID, productID, micros(out[0].CreatedAt), out[0].ID, micros(out[len(out)-1].CreatedAt), out[len(out)-1].ID)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListReleases: %w", err)
	}
	type releaseImage struct {
		release string
		image   Image
	}
	images, err := scanAll(rows, func(row rowScanner) (releaseImage, error) {
		var ri releaseImage
		var sv, at int64
		err := row.Scan(&ri.release, &ri.image.SHA256, &ri.image.Component, &ri.image.Version, &sv, &ri.image.Length, &at)
		ri.image.SecurityVersion, ri.image.CreatedAt = uint64(sv), fromMicros(at)
		return ri, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("store.ListReleases: %w", err)
	}
	for _, ri := range images {
		if i, ok := byID[ri.release]; ok {
			out[i].Images = append(out[i].Images, ri.image)
		}
	}
	return out, next, nil
}

// PreviousReleases returns up to n signed or revoked releases of r's product created before r,
// newest first, each with its images and deltas.
func (s *Store) PreviousReleases(ctx context.Context, tenantID string, r Release, n int) ([]Release, error) {
	versions, err := queryIDs(ctx, s.db, `SELECT r.version FROM releases r JOIN products p ON p.id = r.product_id
		WHERE r.tenant_id = $1 AND p.name = $2 AND r.state <> $3 AND r.id <> $4 AND r.created_at <= $5
		ORDER BY r.created_at DESC LIMIT $6`, tenantID, r.Product, ReleaseDraft, r.ID, micros(r.CreatedAt), n)
	if err != nil {
		return nil, fmt.Errorf("store.PreviousReleases: %w", err)
	}
	var out []Release
	for _, v := range versions {
		p, err := getRelease(ctx, s.db, tenantID, r.Product, v)
		if err != nil {
			return nil, fmt.Errorf("store.PreviousReleases: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// SetReleaseDeltas replaces the deltas recorded for a release.
func (s *Store) SetReleaseDeltas(ctx context.Context, releaseID string, deltas []Delta) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM release_deltas WHERE release_id = $1`, releaseID); err != nil {
			return err
		}
		for _, d := range deltas {
			if _, err := tx.ExecContext(ctx, `INSERT INTO release_deltas (release_id, from_sha256, to_sha256, sha256, length) VALUES ($1, $2, $3, $4, $5)`,
				releaseID, d.From, d.To, d.SHA256, d.Length); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store.SetReleaseDeltas: %w", s.mapErr(err))
	}
	return nil
}

// DeltaBlob returns the blob hash of a delta between two images in any of the tenant's
// releases; ErrNotFound when there is none.
func (s *Store) DeltaBlob(ctx context.Context, tenantID, from, to string) (string, error) {
	var sum string
	err := s.db.QueryRowContext(ctx, `SELECT d.sha256 FROM release_deltas d JOIN releases r ON r.id = d.release_id
		WHERE r.tenant_id = $1 AND d.from_sha256 = $2 AND d.to_sha256 = $3 LIMIT 1`, tenantID, from, to).Scan(&sum)
	if err != nil {
		return "", fmt.Errorf("store.DeltaBlob: %w", s.mapErr(err))
	}
	return sum, nil
}

// ReleasedImage is one image of a product's signed or revoked release: the reference values
// attestation compares a device's measurements with.
type ReleasedImage struct {
	SHA256       string
	Component    string
	ImageVersion string
	Release      string // the release's version
	Revoked      bool
	// Authenticode is the image's Authenticode SHA-256 when it is a PE/EFI binary.
	Authenticode string
	// Newest is true for the images of the product's newest signed release.
	Newest bool
}

// ReleasedImages returns the images of every signed or revoked release of a tenant's
// product. Drafts are left out: no device should run them.
func (s *Store) ReleasedImages(ctx context.Context, tenantID, product string) ([]ReleasedImage, error) {
	rows, err := s.db.QueryContext(s.quick(ctx), `SELECT ri.sha256, ri.component, i.version, r.version, r.state, r.signed_at, i.authenticode
		FROM release_images ri
		JOIN releases r ON r.id = ri.release_id
		JOIN products p ON p.id = r.product_id
		JOIN images i ON i.tenant_id = r.tenant_id AND i.sha256 = ri.sha256
		WHERE r.tenant_id = $1 AND p.name = $2 AND r.state IN ($3, $4)
		ORDER BY r.signed_at, ri.component`, tenantID, product, ReleaseSigned, ReleaseRevoked)
	if err != nil {
		return nil, fmt.Errorf("store.ReleasedImages: %w", err)
	}
	var (
		newest     string
		newestTime int64 = -1
	)
	out, err := scanAll(rows, func(row rowScanner) (ReleasedImage, error) {
		var im ReleasedImage
		var state string
		var signed sql.NullInt64
		if err := row.Scan(&im.SHA256, &im.Component, &im.ImageVersion, &im.Release, &state, &signed, &im.Authenticode); err != nil {
			return im, err
		}
		im.Revoked = state == ReleaseRevoked
		if !im.Revoked && signed.Valid && signed.Int64 > newestTime {
			newest, newestTime = im.Release, signed.Int64
		}
		return im, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store.ReleasedImages: %w", err)
	}
	for i := range out {
		out[i].Newest = !out[i].Revoked && out[i].Release == newest
	}
	return out, nil
}

// UpdatesTx is one transaction over the update tables, for changes whose next write depends
// on what internal/release makes of the rows it read (a signature checked against the
// repository's roots, director metadata signed for a device). Audit records go in the same
// transaction through Audit.
type UpdatesTx struct {
	s  *Store
	tx *sql.Tx
	// device marks one device's short update (InDeviceUpdateTx), whose statements run without
	// the request's cancellation on SQLite (Store.quick).
	device bool
}

// ctx is the context for one of t's statements: ctx, or for a device's update ctx without its
// cancellation on SQLite.
func (t *UpdatesTx) ctx(ctx context.Context) context.Context {
	if t.device {
		return t.s.quick(ctx)
	}
	return ctx
}

// InUpdatesTx runs fn in one transaction, committing only when fn returns nil.
func (s *Store) InUpdatesTx(ctx context.Context, fn func(t *UpdatesTx) error) error {
	return s.mapErr(s.inTx(ctx, func(tx *sql.Tx) error { return fn(&UpdatesTx{s: s, tx: tx}) }))
}

// InDeviceUpdateTx is InUpdatesTx for one device's short update (the director naming a
// release for it): on SQLite the transaction may be shared with other devices' writes and
// committed with them (group.go); it returns only after that transaction committed, as
// InUpdatesTx does. fn must not write through the store outside t.
func (s *Store) InDeviceUpdateTx(ctx context.Context, fn func(t *UpdatesTx) error) error {
	return s.mapErr(s.groupTx(ctx, func(tx *sql.Tx) error { return fn(&UpdatesTx{s: s, tx: tx, device: true}) }))
}

// Audit appends a record to tenantID's audit chain in the transaction.
func (t *UpdatesTx) Audit(ctx context.Context, tenantID string, actor Actor, action, target string, details Details) error {
	return t.s.appendAudit(t.ctx(ctx), t.tx, tenantID, actor, action, target, details)
}

// Release reads one release of a tenant's product with its images and deltas; ErrNotFound when
// there is none.
func (t *UpdatesTx) Release(ctx context.Context, tenantID, product, version string) (Release, error) {
	r, err := getRelease(t.ctx(ctx), t.tx, tenantID, product, version)
	if errors.Is(err, sql.ErrNoRows) {
		return Release{}, ErrNotFound
	}
	return r, err
}

// MarkSigned records that a release's targets (version targetsVersion) were signed at now.
func (t *UpdatesTx) MarkSigned(ctx context.Context, releaseID string, targetsVersion int64, now time.Time) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE releases SET state = $1, targets_version = $2, signed_at = $3 WHERE id = $4`,
		ReleaseSigned, targetsVersion, micros(now), releaseID)
	return err
}

// MarkRevoked records that a release was revoked at now, for reason.
func (t *UpdatesTx) MarkRevoked(ctx context.Context, releaseID, reason string, now time.Time) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE releases SET state = $1, revoked_reason = $2, revoked_at = $3 WHERE id = $4`,
		ReleaseRevoked, reason, micros(now), releaseID)
	return err
}

// DemoteRevoked demotes, in the transaction that revoked releaseID, the certificates of the
// devices that run it: see demoteRevoked.
func (t *UpdatesTx) DemoteRevoked(ctx context.Context, actor Actor, tenantID, releaseID string) (Demotion, error) {
	return t.s.demoteRevoked(ctx, t.tx, actor, tenantID, releaseID)
}
