// Package release owns the server side of signed updates: content-addressed
// images, releases grouping them per product, each tenant's TUF image
// repository (roots and targets signed offline, snapshot and timestamp
// signed here), the deltas built at signing time, and each device's
// director metadata. Its tables are in migration 0200_updates.sql. The API
// and the server import it; the agent never does.
package release

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/delta"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/tuf"
)

// Sentinel errors; the API maps them to 4xx answers.
var (
	ErrNotFound     = errors.New("release: not found")
	ErrConflict     = errors.New("release: conflict")
	ErrInvalid      = errors.New("release: invalid")
	ErrNotInit      = errors.New("release: the tenant has no update keys yet (run `rampart keys init`)")
	ErrWrongState   = errors.New("release: release is not in a state that allows this")
	ErrConcurrently = errors.New("release: the repository changed concurrently; retry")
)

// refuse is a refusal of the caller's input: it wraps ErrInvalid, and its public sentence,
// "refused: " and the detail, is what the client is told.
func refuse(format string, args ...any) error {
	return public.Wrap(ErrInvalid, public.Invalid, "refused: "+format, args...)
}

// Release states.
const (
	StateDraft   = "draft"
	StateSigned  = "signed"
	StateRevoked = "revoked"
)

// Defaults.
const (
	DefaultMaxImageSize = 4 << 30
	DefaultDeltaFrom    = 3
)

// Config wires a Service.
type Config struct {
	Store  *store.Store
	Blobs  *Blobs
	Online *tuf.OnlineKeys
	Expiry tuf.Expiry
	// MaxImageSize caps uploads; DefaultMaxImageSize when zero.
	MaxImageSize int64
	// DeltaFrom is how many previous signed releases get a delta; DefaultDeltaFrom when zero.
	DeltaFrom int
	Logger    *slog.Logger
	Now       func() time.Time
}

// Service implements images, releases, the image repository and the director.
type Service struct {
	cfg Config
	log *slog.Logger

	// files caches each tenant's static metadata files by the repository
	// row's updated_at, so a polling device costs one small query.
	mu    sync.Mutex
	files map[string]cachedFiles

	// reads batches check-in reads on PostgreSQL; nil on SQLite.
	reads *checkInReads
}

type cachedFiles struct {
	updatedAt int64
	files     map[string][]byte
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Blobs == nil || cfg.Online == nil {
		return nil, fmt.Errorf("release.New: store, blobs and online keys are required")
	}
	if cfg.MaxImageSize == 0 {
		cfg.MaxImageSize = DefaultMaxImageSize
	}
	if cfg.DeltaFrom == 0 {
		cfg.DeltaFrom = DefaultDeltaFrom
	}
	if cfg.Expiry == (tuf.Expiry{}) {
		cfg.Expiry = tuf.DefaultExpiry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, log: cfg.Logger, files: map[string]cachedFiles{}}
	if cfg.Store.Dialect() == "postgres" {
		s.reads = newCheckInReads(cfg.Store)
	}
	return s, nil
}

// OnlinePublic returns the public online keys that `rampart keys init`
// writes into the roots it signs.
func (s *Service) OnlinePublic() tuf.OnlinePublic { return s.cfg.Online.Public() }

// Image is a stored, content-addressed artifact.
type Image struct {
	SHA256          string
	Component       string
	Version         string
	SecurityVersion uint64
	Length          int64
	CreatedAt       time.Time
}

func (im Image) tuf() tuf.Image {
	return tuf.Image{SHA256: im.SHA256, Length: im.Length, Component: im.Component, Version: im.Version, SecurityVersion: im.SecurityVersion}
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
	Deltas         []tuf.Delta
	// Demoted is set by Revoke only: the devices whose normal certificates the revocation
	// demoted to update-only (store.DemoteRevoked), for the caller to wake so they attest again.
	Demoted []string
}

type repoRow struct {
	state    tuf.State
	raw      string
	director [][]byte
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

func (s *Service) loadRepo(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, tenantID string) (*repoRow, error) {
	var raw, dir string
	err := q.QueryRowContext(ctx, `SELECT state, director_roots FROM tuf_repos WHERE tenant_id = $1`, tenantID).Scan(&raw, &dir)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotInit
	}
	if err != nil {
		return nil, err
	}
	r := &repoRow{raw: raw}
	if err := json.Unmarshal([]byte(raw), &r.state); err != nil {
		return nil, fmt.Errorf("decode repository state: %w", err)
	}
	if err := json.Unmarshal([]byte(dir), &r.director); err != nil {
		return nil, fmt.Errorf("decode director roots: %w", err)
	}
	return r, nil
}

// saveRepo replaces the state only if nobody changed it since it was read.
// updated_at strictly increases, since RepoFile caches files by it.
func saveRepo(ctx context.Context, tx *sql.Tx, tenantID string, old *repoRow, st tuf.State, director [][]byte, now time.Time) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	d, err := json.Marshal(director)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE tuf_repos SET state = $1, director_roots = $2,
		updated_at = CASE WHEN updated_at < $3 THEN $3 ELSE updated_at + 1 END WHERE tenant_id = $4 AND state = $5`,
		string(b), string(d), micros(now), tenantID, old.raw)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return ErrConcurrently
	}
	return nil
}

// Init stores a tenant's first image-repository root and director root,
// both signed offline by `rampart keys init`.
func (s *Service) Init(ctx context.Context, actor store.Actor, tenantID string, root, directorRoot []byte) error {
	now := s.now()
	repo, err := tuf.OpenRepository(tuf.State{}, s.cfg.Online, s.cfg.Expiry)
	if err != nil {
		return fmt.Errorf("release.Init: %w", err)
	}
	if err := repo.AddRoot(root, now); err != nil {
		return fmt.Errorf("release.Init: %w", refuse("%v", err))
	}
	if _, err := tuf.NewDirector([][]byte{directorRoot}, s.cfg.Online.Director, s.cfg.Expiry); err != nil {
		return fmt.Errorf("release.Init: director root: %w", refuse("%v", err))
	}
	b, err := json.Marshal(repo.State())
	if err != nil {
		return fmt.Errorf("release.Init: %w", err)
	}
	d, err := json.Marshal([][]byte{directorRoot})
	if err != nil {
		return fmt.Errorf("release.Init: %w", err)
	}
	err = s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tuf_repos (tenant_id, state, director_roots, updated_at) VALUES ($1, $2, $3, $4)`,
			tenantID, string(b), string(d), micros(now)); err != nil {
			return err
		}
		return s.cfg.Store.AppendAudit(ctx, tx, tenantID, actor, "tuf.init", "tuf/root", store.Details{"root_version": 1})
	})
	if err != nil {
		return fmt.Errorf("release.Init: %w", mapErr(err))
	}
	return nil
}

// Roots returns the tenant's newest image-repository root and director root.
func (s *Service) Roots(ctx context.Context, tenantID string) (root, directorRoot []byte, err error) {
	r, err := s.loadRepo(ctx, s.cfg.Store.DB(), tenantID)
	if err != nil {
		return nil, nil, fmt.Errorf("release.Roots: %w", err)
	}
	return r.state.Roots[len(r.state.Roots)-1], r.director[len(r.director)-1], nil
}

// AddRoot installs a rotated image-repository root (and, when directorRoot
// is not nil, a rotated director root), both signed offline.
func (s *Service) AddRoot(ctx context.Context, actor store.Actor, tenantID string, root, directorRoot []byte) error {
	now := s.now()
	err := s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
		r, err := s.loadRepo(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		repo, err := tuf.OpenRepository(r.state, s.cfg.Online, s.cfg.Expiry)
		if err != nil {
			return err
		}
		director := r.director
		if root != nil {
			if err := repo.AddRoot(root, now); err != nil {
				return refuse("%v", err)
			}
		}
		if directorRoot != nil {
			director = append(slices.Clone(director), directorRoot)
			if _, err := tuf.NewDirector(director, s.cfg.Online.Director, s.cfg.Expiry); err != nil {
				return refuse("director root: %v", err)
			}
		}
		if err := saveRepo(ctx, tx, tenantID, r, repo.State(), director, now); err != nil {
			return err
		}
		return s.cfg.Store.AppendAudit(ctx, tx, tenantID, actor, "tuf.root.rotate", "tuf/root", store.Details{"root_versions": len(repo.State().Roots), "director_root_versions": len(director)})
	})
	if err != nil {
		return fmt.Errorf("release.AddRoot: %w", mapErr(err))
	}
	return nil
}

// AddImage streams an image into the blob store and records it. Adding the
// same bytes again with the same attributes returns the existing image.
func (s *Service) AddImage(ctx context.Context, actor store.Actor, tenantID string, r io.Reader, component, version string, securityVersion uint64) (Image, error) {
	if !deviceapi.ComponentRe.MatchString(component) {
		return Image{}, fmt.Errorf("release.AddImage: %w", refuse("component %q (letters, digits, . _ -)", component))
	}
	if !deviceapi.ValidVersion(version) {
		return Image{}, fmt.Errorf("release.AddImage: %w", refuse("version %q (like 1.2.3)", version))
	}
	if securityVersion > 1<<53 {
		return Image{}, fmt.Errorf("release.AddImage: %w", refuse("security version too large"))
	}
	sum, n, err := s.cfg.Blobs.Put(r, s.cfg.MaxImageSize)
	if err != nil {
		return Image{}, fmt.Errorf("release.AddImage: %w", err)
	}
	im := Image{SHA256: sum, Component: component, Version: version, SecurityVersion: securityVersion, Length: n, CreatedAt: s.now()}
	err = s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
		old, err := scanImage(tx.QueryRowContext(ctx, `SELECT sha256, component, version, security_version, length, created_at
			FROM images WHERE tenant_id = $1 AND sha256 = $2`, tenantID, sum))
		if err == nil {
			if old.Component != component || old.Version != version || old.SecurityVersion != securityVersion {
				return fmt.Errorf("%w: image %s is already recorded as %s %s", ErrConflict, sum, old.Component, old.Version)
			}
			im = old
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO images (tenant_id, sha256, component, version, security_version, length, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, tenantID, sum, component, version, int64(securityVersion), n, micros(im.CreatedAt)); err != nil {
			return err
		}
		return s.cfg.Store.AppendAudit(ctx, tx, tenantID, actor, "image.add", "image/"+sum,
			store.Details{"component": component, "version": version, "security_version": securityVersion, "length": n})
	})
	if err != nil {
		return Image{}, fmt.Errorf("release.AddImage: %w", mapErr(err))
	}
	return im, nil
}

func scanImage(row interface{ Scan(...any) error }) (Image, error) {
	var im Image
	var sv, at int64
	if err := row.Scan(&im.SHA256, &im.Component, &im.Version, &sv, &im.Length, &at); err != nil {
		return Image{}, err
	}
	im.SecurityVersion, im.CreatedAt = uint64(sv), fromMicros(at)
	return im, nil
}

// CreateRelease groups images (by hex SHA-256, one per component) into a
// draft release of a product.
func (s *Service) CreateRelease(ctx context.Context, actor store.Actor, tenantID, product, version string, images []string) (Release, error) {
	if !deviceapi.ValidVersion(version) {
		return Release{}, fmt.Errorf("release.CreateRelease: %w", refuse("version %q (like 1.2.3)", version))
	}
	if len(images) == 0 || len(images) > 64 {
		return Release{}, fmt.Errorf("release.CreateRelease: %w", refuse("a release has 1 to 64 images"))
	}
	p, err := s.cfg.Store.ProductByName(ctx, tenantID, product)
	if err != nil {
		return Release{}, fmt.Errorf("release.CreateRelease: product %s: %w", product, mapErr(err))
	}
	rel := Release{ID: store.NewID("rel"), Product: product, Version: version, State: StateDraft, CreatedAt: s.now()}
	err = s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
		seen := map[string]bool{}
		for _, sum := range images {
			im, err := scanImage(tx.QueryRowContext(ctx, `SELECT sha256, component, version, security_version, length, created_at
				FROM images WHERE tenant_id = $1 AND sha256 = $2`, tenantID, sum))
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: image %s", ErrNotFound, sum)
			}
			if err != nil {
				return err
			}
			if seen[im.Component] {
				return refuse("two images for component %s", im.Component)
			}
			seen[im.Component] = true
			rel.Images = append(rel.Images, im)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO releases (id, tenant_id, product_id, version, state, targets_version, revoked_reason, created_at)
			VALUES ($1, $2, $3, $4, $5, 0, '', $6)`, rel.ID, tenantID, p.ID, version, StateDraft, micros(rel.CreatedAt)); err != nil {
			return err
		}
		for _, im := range rel.Images {
			if _, err := tx.ExecContext(ctx, `INSERT INTO release_images (release_id, component, sha256) VALUES ($1, $2, $3)`,
				rel.ID, im.Component, im.SHA256); err != nil {
				return err
			}
		}
		return s.cfg.Store.AppendAudit(ctx, tx, tenantID, actor, "release.create", "release/"+rel.ID,
			store.Details{"product": product, "version": version, "images": images})
	})
	if err != nil {
		return Release{}, fmt.Errorf("release.CreateRelease: %w", mapErr(err))
	}
	return rel, nil
}

const releaseColumns = `r.id, p.name, r.version, r.state, r.targets_version, r.revoked_reason, r.created_at, r.signed_at, r.revoked_at`

func scanRelease(row interface{ Scan(...any) error }) (Release, error) {
	var r Release
	var at int64
	var signed, revoked sql.NullInt64
	if err := row.Scan(&r.ID, &r.Product, &r.Version, &r.State, &r.TargetsVersion, &r.RevokedReason, &at, &signed, &revoked); err != nil {
		return Release{}, err
	}
	r.CreatedAt, r.SignedAt, r.RevokedAt = fromMicros(at), nullTime(signed), nullTime(revoked)
	return r, nil
}

type querier interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

func (s *Service) getRelease(ctx context.Context, q querier, tenantID, product, version string) (Release, error) {
	r, err := scanRelease(q.QueryRowContext(ctx, `SELECT `+releaseColumns+`
		FROM releases r JOIN products p ON p.id = r.product_id
		WHERE r.tenant_id = $1 AND p.name = $2 AND r.version = $3`, tenantID, product, version))
	if err != nil {
		return Release{}, err
	}
	rows, err := q.QueryContext(ctx, `SELECT i.sha256, i.component, i.version, i.security_version, i.length, i.created_at
		FROM release_images ri JOIN images i ON i.sha256 = ri.sha256 AND i.tenant_id = $1
		WHERE ri.release_id = $2 ORDER BY ri.component`, tenantID, r.ID)
	if err != nil {
		return Release{}, err
	}
	for rows.Next() {
		im, err := scanImage(rows)
		if err != nil {
			rows.Close()
			return Release{}, err
		}
		r.Images = append(r.Images, im)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Release{}, err
	}
	drows, err := q.QueryContext(ctx, `SELECT from_sha256, to_sha256, sha256, length FROM release_deltas WHERE release_id = $1 ORDER BY from_sha256, to_sha256`, r.ID)
	if err != nil {
		return Release{}, err
	}
	defer drows.Close()
	for drows.Next() {
		var d tuf.Delta
		if err := drows.Scan(&d.From, &d.To, &d.SHA256, &d.Length); err != nil {
			return Release{}, err
		}
		r.Deltas = append(r.Deltas, d)
	}
	return r, drows.Err()
}

// GetRelease returns one release with its images and deltas.
func (s *Service) GetRelease(ctx context.Context, tenantID, product, version string) (Release, error) {
	r, err := s.getRelease(ctx, s.cfg.Store.DB(), tenantID, product, version)
	if err != nil {
		return Release{}, fmt.Errorf("release.GetRelease: %w", mapErr(err))
	}
	return r, nil
}

// previous returns up to n signed (or revoked) releases of the product
// created before r, newest first.
func (s *Service) previous(ctx context.Context, tenantID string, r Release, n int) ([]Release, error) {
	rows, err := s.cfg.Store.DB().QueryContext(ctx, `SELECT r.version FROM releases r JOIN products p ON p.id = r.product_id
		WHERE r.tenant_id = $1 AND p.name = $2 AND r.state <> $3 AND r.id <> $4 AND r.created_at <= $5
		ORDER BY r.created_at DESC LIMIT $6`, tenantID, r.Product, StateDraft, r.ID, micros(r.CreatedAt), n)
	if err != nil {
		return nil, err
	}
	var versions []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		versions = append(versions, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []Release
	for _, v := range versions {
		p, err := s.getRelease(ctx, s.cfg.Store.DB(), tenantID, r.Product, v)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// PrepareSign builds the deltas from the previous releases' images and
// returns the unsigned targets payload that `rampart release sign` signs
// offline.
func (s *Service) PrepareSign(ctx context.Context, tenantID, product, version string) ([]byte, error) {
	r, err := s.GetRelease(ctx, tenantID, product, version)
	if err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", err)
	}
	if r.State != StateDraft {
		return nil, fmt.Errorf("release.PrepareSign: %w: %s is %s", ErrWrongState, version, r.State)
	}
	repoRow, err := s.loadRepo(ctx, s.cfg.Store.DB(), tenantID)
	if err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", err)
	}
	prev, err := s.previous(ctx, tenantID, r, s.cfg.DeltaFrom)
	if err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", err)
	}
	deltas, err := s.buildDeltas(ctx, r, prev)
	if err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", err)
	}
	err = s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM release_deltas WHERE release_id = $1`, r.ID); err != nil {
			return err
		}
		for _, d := range deltas {
			if _, err := tx.ExecContext(ctx, `INSERT INTO release_deltas (release_id, from_sha256, to_sha256, sha256, length) VALUES ($1, $2, $3, $4, $5)`,
				r.ID, d.From, d.To, d.SHA256, d.Length); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", mapErr(err))
	}
	repo, err := tuf.OpenRepository(repoRow.state, s.cfg.Online, s.cfg.Expiry)
	if err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", err)
	}
	var images []tuf.Image
	for _, p := range prev {
		for _, im := range p.Images {
			images = append(images, im.tuf())
		}
	}
	for _, im := range r.Images {
		images = append(images, im.tuf())
	}
	payload, err := repo.NextTargets(images, deltas, s.now())
	if err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", err)
	}
	return payload, nil
}

func (s *Service) buildDeltas(ctx context.Context, r Release, prev []Release) ([]tuf.Delta, error) {
	var out []tuf.Delta
	done := map[string]bool{}
	for _, p := range prev {
		for _, old := range p.Images {
			for _, im := range r.Images {
				key := old.SHA256 + im.SHA256
				if old.Component != im.Component || old.SHA256 == im.SHA256 || done[key] {
					continue
				}
				done[key] = true
				d, err := s.buildDelta(ctx, old, im)
				if err != nil {
					return nil, fmt.Errorf("delta %s %s to %s: %w", im.Component, old.Version, im.Version, err)
				}
				out = append(out, d)
			}
		}
	}
	return out, nil
}

func (s *Service) buildDelta(ctx context.Context, old, im Image) (tuf.Delta, error) {
	base, release, err := delta.MapFile(s.cfg.Blobs.Path(old.SHA256))
	if err != nil {
		return tuf.Delta{}, err
	}
	defer release()
	f, err := s.cfg.Blobs.Open(im.SHA256)
	if err != nil {
		return tuf.Delta{}, err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(delta.Build(ctx, pw, base, f, im.Length, delta.BuildOptions{}))
	}()
	sum, n, err := s.cfg.Blobs.Put(pr, s.cfg.MaxImageSize)
	pr.CloseWithError(err)
	if err != nil {
		return tuf.Delta{}, err
	}
	return tuf.Delta{From: old.SHA256, To: im.SHA256, SHA256: sum, Length: n}, nil
}

// Sign installs targets signed offline for a prepared release: they must
// verify against the tenant's root, be newer than the current targets and
// list every image of the release. Snapshot and timestamp are re-signed.
func (s *Service) Sign(ctx context.Context, actor store.Actor, tenantID, product, version string, signed []byte) (Release, error) {
	now := s.now()
	var out Release
	err := s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
		r, err := s.getRelease(ctx, tx, tenantID, product, version)
		if err != nil {
			return err
		}
		if r.State != StateDraft {
			return fmt.Errorf("%w: %s is %s", ErrWrongState, version, r.State)
		}
		row, err := s.loadRepo(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		repo, err := tuf.OpenRepository(row.state, s.cfg.Online, s.cfg.Expiry)
		if err != nil {
			return err
		}
		summary, err := tuf.SummarizeTargets(signed)
		if err != nil {
			return refuse("%v", err)
		}
		for _, im := range r.Images {
			if !slices.ContainsFunc(summary.Images, func(x tuf.Image) bool { return x == im.tuf() }) {
				return refuse("the signed targets do not list %s %s", im.Component, im.SHA256)
			}
		}
		if summary.Deltas < len(r.Deltas) {
			return refuse("the signed targets lack the release's deltas; run sign again")
		}
		if err := repo.SetTargets(signed, now); err != nil {
			return refuse("%v", err)
		}
		if err := saveRepo(ctx, tx, tenantID, row, repo.State(), row.director, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE releases SET state = $1, targets_version = $2, signed_at = $3 WHERE id = $4`,
			StateSigned, summary.Version, micros(now), r.ID); err != nil {
			return err
		}
		r.State, r.TargetsVersion, r.SignedAt = StateSigned, summary.Version, &now
		out = r
		return s.cfg.Store.AppendAudit(ctx, tx, tenantID, actor, "release.sign", "release/"+r.ID,
			store.Details{"product": product, "version": version, "targets_version": summary.Version, "deltas": len(r.Deltas)})
	})
	if err != nil {
		return Release{}, fmt.Errorf("release.Sign: %w", mapErr(err))
	}
	return out, nil
}

// Revoke marks a release vulnerable. It stays in history and in the signed
// targets; the director stops naming it. In the same transaction the devices whose
// last attestation measured it lose their full access (store.DemoteRevoked); the
// returned release lists them in Demoted.
func (s *Service) Revoke(ctx context.Context, actor store.Actor, tenantID, product, version, reason string) (Release, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 1000 {
		return Release{}, fmt.Errorf("release.Revoke: %w", refuse("a reason of 1 to 1000 characters is required"))
	}
	now := s.now()
	var out Release
	err := s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
		r, err := s.getRelease(ctx, tx, tenantID, product, version)
		if err != nil {
			return err
		}
		if r.State == StateRevoked {
			return fmt.Errorf("%w: %s is already revoked", ErrWrongState, version)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE releases SET state = $1, revoked_reason = $2, revoked_at = $3 WHERE id = $4`,
			StateRevoked, reason, micros(now), r.ID); err != nil {
			return err
		}
		r.State, r.RevokedReason, r.RevokedAt = StateRevoked, reason, &now
		if err := s.cfg.Store.AppendAudit(ctx, tx, tenantID, actor, "release.revoke", "release/"+r.ID,
			store.Details{"product": product, "version": version, "reason": reason}); err != nil {
			return err
		}
		// The devices that run it lose their full access in the same transaction.
		dem, err := s.cfg.Store.DemoteRevoked(ctx, tx, actor, tenantID, r.ID)
		if err != nil {
			return err
		}
		r.Demoted = dem.Devices
		out = r
		return nil
	})
	if err != nil {
		return Release{}, fmt.Errorf("release.Revoke: %w", mapErr(err))
	}
	return out, nil
}

// RepoFile returns one metadata file of a tenant's image repository, by the
// name a TUF client asks for (N.root.json, timestamp.json, ...).
func (s *Service) RepoFile(ctx context.Context, tenantID, name string) ([]byte, error) {
	db := s.cfg.Store.DB()
	var updated int64
	err := db.QueryRowContext(ctx, `SELECT updated_at FROM tuf_repos WHERE tenant_id = $1`, tenantID).Scan(&updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("release.RepoFile: %w", ErrNotInit)
	}
	if err != nil {
		return nil, fmt.Errorf("release.RepoFile: %w", err)
	}
	s.mu.Lock()
	c, ok := s.files[tenantID]
	s.mu.Unlock()
	if !ok || c.updatedAt != updated {
		// Read state and timestamp together so the cache key matches the files.
		var raw string
		if err := db.QueryRowContext(ctx, `SELECT state, updated_at FROM tuf_repos WHERE tenant_id = $1`, tenantID).Scan(&raw, &updated); err != nil {
			return nil, fmt.Errorf("release.RepoFile: %w", mapErr(err))
		}
		var st tuf.State
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			return nil, fmt.Errorf("release.RepoFile: %w", err)
		}
		files, err := tuf.StateFiles(st)
		if err != nil {
			return nil, fmt.Errorf("release.RepoFile: %w", err)
		}
		c = cachedFiles{updatedAt: updated, files: files}
		s.mu.Lock()
		s.files[tenantID] = c
		s.mu.Unlock()
	}
	b, ok := c.files[name]
	if !ok {
		return nil, fmt.Errorf("release.RepoFile: %w: %s", ErrNotFound, name)
	}
	return b, nil
}

// TargetBlob returns the blob hash of a target path (images/<sha256> or
// deltas/<from>-<to>.zst) that belongs to the tenant.
func (s *Service) TargetBlob(ctx context.Context, tenantID, path string) (string, error) {
	db := s.cfg.Store.DB()
	if sum, ok := strings.CutPrefix(path, "images/"); ok && deviceapi.SHA256Re.MatchString(sum) {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM images WHERE tenant_id = $1 AND sha256 = $2`, tenantID, sum).Scan(&n); err != nil {
			return "", fmt.Errorf("release.TargetBlob: %w", err)
		}
		if n == 1 {
			return sum, nil
		}
	}
	if name, ok := strings.CutPrefix(path, "deltas/"); ok {
		from, to, _ := strings.Cut(strings.TrimSuffix(name, ".zst"), "-")
		var sum string
		err := db.QueryRowContext(ctx, `SELECT d.sha256 FROM release_deltas d JOIN releases r ON r.id = d.release_id
			WHERE r.tenant_id = $1 AND d.from_sha256 = $2 AND d.to_sha256 = $3 LIMIT 1`, tenantID, from, to).Scan(&sum)
		if err == nil {
			return sum, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("release.TargetBlob: %w", err)
		}
	}
	return "", fmt.Errorf("release.TargetBlob: %w: %s", ErrNotFound, path)
}

// Refresh re-signs, for every tenant, the online roles whose lifetime is
// half gone, and re-issues director metadata past half its lifetime. The
// server runs it periodically (tasks.Refresher).
func (s *Service) Refresh(ctx context.Context) error {
	rows, err := s.cfg.Store.DB().QueryContext(ctx, `SELECT tenant_id FROM tuf_repos`)
	if err != nil {
		return fmt.Errorf("release.Refresh: %w", err)
	}
	var tenants []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return fmt.Errorf("release.Refresh: %w", err)
		}
		tenants = append(tenants, t)
	}
	rows.Close()
	var errs []error
	for _, t := range tenants {
		err := s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
			r, err := s.loadRepo(ctx, tx, t)
			if err != nil {
				return err
			}
			repo, err := tuf.OpenRepository(r.state, s.cfg.Online, s.cfg.Expiry)
			if err != nil {
				return err
			}
			changed, err := repo.Refresh(s.now())
			if err != nil || !changed {
				return err
			}
			return saveRepo(ctx, tx, t, r, repo.State(), r.director, s.now())
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t, err))
		}
	}
	if err := s.refreshDirector(ctx); err != nil {
		errs = append(errs, fmt.Errorf("director: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release.Refresh: %w", err)
	}
	return nil
}
