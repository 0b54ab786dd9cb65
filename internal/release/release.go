// Package release owns the server side of signed updates: content-addressed
// images, releases grouping them per product, each tenant's TUF image
// repository (roots and targets signed offline, snapshot and timestamp
// signed here), the deltas built at signing time, and each device's
// director metadata. It decides what is stored; internal/store owns the
// tables (migration 0200_updates.sql) and their SQL. The API and the server
// import it; the agent never does.
package release

import (
	"context"
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
// "refused: " and the detail, is what the client is told. An error among args lends its
// public sentence (tuf's refusals carry one), never its whole text.
func refuse(format string, args ...any) error {
	return fmt.Errorf("%w (%w)", public.Errorf(public.Invalid, "refused: "+format, args...), ErrInvalid)
}

// Release states.
const (
	StateDraft   = store.ReleaseDraft
	StateSigned  = store.ReleaseSigned
	StateRevoked = store.ReleaseRevoked
)

// Defaults.
const (
	DefaultMaxImageSize = 4 << 30
	DefaultDeltaFrom    = 3
)

// Config wires a Service.
type Config struct {
	Store  *store.Store
	Blobs  BlobStore
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

	// directors keeps each tenant's director with the root chain it verified, so that
	// issuing a device's metadata checks the chain once per change instead of once per device.
	dmu       sync.Mutex
	directors map[string]cachedDirector
}

type cachedDirector struct {
	roots string // the stored root chain, as stored
	key   *tuf.PrivateKey
	dir   *tuf.Director
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

// Image is a stored, content-addressed artifact; Release is a versioned set of images of a
// product. Both are the store's rows.
type (
	Image   = store.Image
	Release = store.Release
)

func tufImage(im Image) tuf.Image {
	return tuf.Image{SHA256: im.SHA256, Length: im.Length, Component: im.Component, Version: im.Version, SecurityVersion: im.SecurityVersion,
		Type: im.Type, RAUCManifestHash: im.RAUCManifestHash}
}

func tufDeltas(ds []store.Delta) []tuf.Delta {
	out := make([]tuf.Delta, len(ds))
	for i, d := range ds {
		out[i] = tuf.Delta(d)
	}
	return out
}

// repoRow is a tenant's stored repository, decoded.
type repoRow struct {
	state    tuf.State
	stored   store.Repo
	director [][]byte
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// fromStore gives the store's sentinel errors the release package's.
func fromStore(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

// decodeRepo decodes a stored repository; a tenant without one is ErrNotInit.
func decodeRepo(r store.Repo, err error) (*repoRow, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotInit
	}
	if err != nil {
		return nil, err
	}
	row := &repoRow{stored: r}
	if err := json.Unmarshal([]byte(r.State), &row.state); err != nil {
		return nil, fmt.Errorf("decode repository state: %w", err)
	}
	if err := json.Unmarshal([]byte(r.DirectorRoots), &row.director); err != nil {
		return nil, fmt.Errorf("decode director roots: %w", err)
	}
	return row, nil
}

func (s *Service) loadRepo(ctx context.Context, tenantID string) (*repoRow, error) {
	return decodeRepo(s.cfg.Store.Repo(ctx, tenantID))
}

// saveRepo replaces the state only if nobody changed it since it was read.
func saveRepo(ctx context.Context, tx *store.UpdatesTx, tenantID string, old *repoRow, st tuf.State, director [][]byte, now time.Time) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	d, err := json.Marshal(director)
	if err != nil {
		return err
	}
	saved, err := tx.SaveRepo(ctx, tenantID, old.stored, string(b), string(d), now)
	if err != nil {
		return err
	}
	if !saved {
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
		return fmt.Errorf("release.Init: %w", refuse("%w", err))
	}
	if _, err := tuf.NewDirector([][]byte{directorRoot}, s.cfg.Online.Director, s.cfg.Expiry); err != nil {
		return fmt.Errorf("release.Init: %w", refuse("director root: %w", err))
	}
	b, err := json.Marshal(repo.State())
	if err != nil {
		return fmt.Errorf("release.Init: %w", err)
	}
	d, err := json.Marshal([][]byte{directorRoot})
	if err != nil {
		return fmt.Errorf("release.Init: %w", err)
	}
	if err := s.cfg.Store.CreateRepo(ctx, actor, tenantID, store.Repo{State: string(b), DirectorRoots: string(d)}, now); err != nil {
		return fmt.Errorf("release.Init: %w", fromStore(err))
	}
	return nil
}

// Roots returns the tenant's newest image-repository root and director root.
func (s *Service) Roots(ctx context.Context, tenantID string) (root, directorRoot []byte, err error) {
	r, err := s.loadRepo(ctx, tenantID)
	if err != nil {
		return nil, nil, fmt.Errorf("release.Roots: %w", err)
	}
	return r.state.Roots[len(r.state.Roots)-1], r.director[len(r.director)-1], nil
}

// AddRoot installs a rotated image-repository root (and, when directorRoot
// is not nil, a rotated director root), both signed offline.
func (s *Service) AddRoot(ctx context.Context, actor store.Actor, tenantID string, root, directorRoot []byte) error {
	now := s.now()
	err := s.cfg.Store.InUpdatesTx(ctx, func(tx *store.UpdatesTx) error {
		r, err := decodeRepo(tx.Repo(ctx, tenantID))
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
				return refuse("%w", err)
			}
		}
		if directorRoot != nil {
			director = append(slices.Clone(director), directorRoot)
			if _, err := tuf.NewDirector(director, s.cfg.Online.Director, s.cfg.Expiry); err != nil {
				return refuse("director root: %w", err)
			}
		}
		if err := saveRepo(ctx, tx, tenantID, r, repo.State(), director, now); err != nil {
			return err
		}
		return tx.Audit(ctx, tenantID, actor, "tuf.root.rotate", "tuf/root", store.Details{"root_versions": len(repo.State().Roots), "director_root_versions": len(director)})
	})
	if err != nil {
		return fmt.Errorf("release.AddRoot: %w", fromStore(err))
	}
	return nil
}

// AddImage streams a directory image into the blob store and records it (AddImageAs).
func (s *Service) AddImage(ctx context.Context, actor store.Actor, tenantID string, r io.Reader, component, version string, securityVersion uint64) (Image, error) {
	return s.AddImageAs(ctx, actor, tenantID, r, ImageAttrs{Component: component, Version: version, SecurityVersion: securityVersion})
}

// ImageAttrs are what an operator says of an image at upload.
type ImageAttrs struct {
	Component       string
	Version         string
	SecurityVersion uint64
	// Type is who installs the image on the device (deviceapi.ImageType*); "" is directory.
	Type string
	// RAUCManifestHash is a rauc-bundle's manifest hash, required for that type only (the
	// CLI reads it from the bundle; see doc/agent.md).
	RAUCManifestHash string
}

// AddImageAs streams an image into the blob store and records it. Adding the
// same bytes again with the same attributes returns the existing image.
func (s *Service) AddImageAs(ctx context.Context, actor store.Actor, tenantID string, r io.Reader, a ImageAttrs) (Image, error) {
	component, version, securityVersion := a.Component, a.Version, a.SecurityVersion
	if !deviceapi.ComponentRe.MatchString(component) {
		return Image{}, fmt.Errorf("release.AddImage: %w", refuse("component %q (letters, digits, . _ -)", component))
	}
	if !deviceapi.ValidVersion(version) {
		return Image{}, fmt.Errorf("release.AddImage: %w", refuse("version %q (like 1.2.3)", version))
	}
	if securityVersion > 1<<53 {
		return Image{}, fmt.Errorf("release.AddImage: %w", refuse("security version too large"))
	}
	if a.Type == "" {
		a.Type = deviceapi.ImageTypeDirectory
	}
	if !deviceapi.ValidImageType(a.Type) {
		return Image{}, fmt.Errorf("release.AddImage: %w", refuse("type %q (directory, rauc-bundle, module:NAME with a lowercase module name, or reference)", a.Type))
	}
	if a.Type == deviceapi.ImageTypeRAUC && !deviceapi.SHA256Re.MatchString(a.RAUCManifestHash) {
		return Image{}, fmt.Errorf("release.AddImage: %w", refuse("a rauc-bundle needs its manifest hash (lowercase hex SHA-256 of the bundle's manifest)"))
	}
	if a.Type != deviceapi.ImageTypeRAUC && a.RAUCManifestHash != "" {
		return Image{}, fmt.Errorf("release.AddImage: %w", refuse("only a rauc-bundle has a manifest hash"))
	}
	var capture peCapture // a PE/EFI image is also known by its Authenticode digest
	sum, n, err := s.cfg.Blobs.Put(ctx, io.TeeReader(r, &capture), s.cfg.MaxImageSize)
	if err != nil {
		return Image{}, fmt.Errorf("release.AddImage: %w", err)
	}
	im := Image{SHA256: sum, Component: component, Version: version, SecurityVersion: securityVersion, Length: n, CreatedAt: s.now(),
		Authenticode: capture.authenticode(), Type: a.Type, RAUCManifestHash: a.RAUCManifestHash}
	stored, err := s.cfg.Store.AddImage(ctx, actor, tenantID, im)
	if err != nil {
		return Image{}, fmt.Errorf("release.AddImage: %w", fromStore(err))
	}
	if stored.Component != component || stored.Version != version || stored.SecurityVersion != securityVersion {
		return Image{}, fmt.Errorf("release.AddImage: %w: image %s is already recorded as %s %s", ErrConflict, sum, stored.Component, stored.Version)
	}
	if stored.Type != a.Type || stored.RAUCManifestHash != a.RAUCManifestHash {
		return Image{}, fmt.Errorf("release.AddImage: %w: image %s is already recorded with type %s", ErrConflict, sum, stored.Type)
	}
	return stored, nil
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
		return Release{}, fmt.Errorf("release.CreateRelease: product %s: %w", product, fromStore(err))
	}
	rel := Release{ID: store.NewID("rel"), Product: product, Version: version, State: StateDraft, CreatedAt: s.now()}
	// Images are immutable once recorded, so reading them before the release is written
	// sees what the release will name.
	seen := map[string]bool{}
	for _, sum := range images {
		im, err := s.cfg.Store.Image(ctx, tenantID, sum)
		if errors.Is(err, store.ErrNotFound) {
			return Release{}, fmt.Errorf("release.CreateRelease: %w: image %s", ErrNotFound, sum)
		}
		if err != nil {
			return Release{}, fmt.Errorf("release.CreateRelease: %w", err)
		}
		if seen[im.Component] {
			return Release{}, fmt.Errorf("release.CreateRelease: %w", refuse("two images for component %s", im.Component))
		}
		seen[im.Component] = true
		rel.Images = append(rel.Images, im)
	}
	if err := s.cfg.Store.CreateRelease(ctx, actor, tenantID, p.ID, rel); err != nil {
		return Release{}, fmt.Errorf("release.CreateRelease: %w", fromStore(err))
	}
	return rel, nil
}

// GetRelease returns one release with its images and deltas.
func (s *Service) GetRelease(ctx context.Context, tenantID, product, version string) (Release, error) {
	r, err := s.cfg.Store.ReleaseByVersion(ctx, tenantID, product, version)
	if err != nil {
		return Release{}, fmt.Errorf("release.GetRelease: %w", fromStore(err))
	}
	return r, nil
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
	repoRow, err := s.loadRepo(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", err)
	}
	prev, err := s.cfg.Store.PreviousReleases(ctx, tenantID, r, s.cfg.DeltaFrom)
	if err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", err)
	}
	deltas, err := s.buildDeltas(ctx, r, prev)
	if err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", err)
	}
	stored := make([]store.Delta, len(deltas))
	for i, d := range deltas {
		stored[i] = store.Delta(d)
	}
	if err := s.cfg.Store.SetReleaseDeltas(ctx, r.ID, stored); err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", fromStore(err))
	}
	repo, err := tuf.OpenRepository(repoRow.state, s.cfg.Online, s.cfg.Expiry)
	if err != nil {
		return nil, fmt.Errorf("release.PrepareSign: %w", err)
	}
	var images []tuf.Image
	for _, p := range prev {
		for _, im := range p.Images {
			images = append(images, tufImage(im))
		}
	}
	for _, im := range r.Images {
		images = append(images, tufImage(im))
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
				if old.Component != im.Component || old.SHA256 == im.SHA256 || done[key] || (im.Type != "" && im.Type != deviceapi.ImageTypeDirectory) {
					// Only the agent's own slot folders are patched: no device downloads a
					// reference image, and an installer (RAUC, an update module) takes the
					// whole image, so neither needs a delta.
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
	path, done, err := s.cfg.Blobs.Local(ctx, old.SHA256)
	if err != nil {
		return tuf.Delta{}, err
	}
	defer done()
	base, release, err := delta.MapFile(path)
	if err != nil {
		return tuf.Delta{}, err
	}
	defer release()
	f, err := s.cfg.Blobs.Open(ctx, im.SHA256)
	if err != nil {
		return tuf.Delta{}, err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(delta.Build(ctx, pw, base, f, im.Length, delta.BuildOptions{}))
	}()
	sum, n, err := s.cfg.Blobs.Put(ctx, pr, s.cfg.MaxImageSize)
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
	err := s.cfg.Store.InUpdatesTx(ctx, func(tx *store.UpdatesTx) error {
		r, err := tx.Release(ctx, tenantID, product, version)
		if err != nil {
			return err
		}
		if r.State != StateDraft {
			return fmt.Errorf("%w: %s is %s", ErrWrongState, version, r.State)
		}
		row, err := decodeRepo(tx.Repo(ctx, tenantID))
		if err != nil {
			return err
		}
		repo, err := tuf.OpenRepository(row.state, s.cfg.Online, s.cfg.Expiry)
		if err != nil {
			return err
		}
		summary, err := tuf.SummarizeTargets(signed)
		if err != nil {
			return refuse("%w", err)
		}
		for _, im := range r.Images {
			if !slices.ContainsFunc(summary.Images, func(x tuf.Image) bool { return x == tufImage(im) }) {
				return refuse("the signed targets do not list %s %s", im.Component, im.SHA256)
			}
		}
		if summary.Deltas < len(r.Deltas) {
			return refuse("the signed targets lack the release's deltas; run sign again")
		}
		if err := repo.SetTargets(signed, now); err != nil {
			return refuse("%w", err)
		}
		if err := saveRepo(ctx, tx, tenantID, row, repo.State(), row.director, now); err != nil {
			return err
		}
		if err := tx.MarkSigned(ctx, r.ID, summary.Version, now); err != nil {
			return err
		}
		r.State, r.TargetsVersion, r.SignedAt = StateSigned, summary.Version, &now
		out = r
		return tx.Audit(ctx, tenantID, actor, "release.sign", "release/"+r.ID,
			store.Details{"product": product, "version": version, "targets_version": summary.Version, "deltas": len(r.Deltas)})
	})
	if err != nil {
		return Release{}, fmt.Errorf("release.Sign: %w", fromStore(err))
	}
	return out, nil
}

// Revoke marks a release vulnerable. It stays in history and in the signed
// targets; the director stops naming it. In the same transaction the devices whose
// last attestation measured it lose their full access
// (store.UpdatesTx.DemoteRevoked); the returned release lists them in Demoted.
func (s *Service) Revoke(ctx context.Context, actor store.Actor, tenantID, product, version, reason string) (Release, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 1000 {
		return Release{}, fmt.Errorf("release.Revoke: %w", refuse("a reason of 1 to 1000 characters is required"))
	}
	now := s.now()
	var out Release
	err := s.cfg.Store.InUpdatesTx(ctx, func(tx *store.UpdatesTx) error {
		r, err := tx.Release(ctx, tenantID, product, version)
		if err != nil {
			return err
		}
		if r.State == StateRevoked {
			return fmt.Errorf("%w: %s is already revoked", ErrWrongState, version)
		}
		if err := tx.MarkRevoked(ctx, r.ID, reason, now); err != nil {
			return err
		}
		r.State, r.RevokedReason, r.RevokedAt = StateRevoked, reason, &now
		if err := tx.Audit(ctx, tenantID, actor, "release.revoke", "release/"+r.ID,
			store.Details{"product": product, "version": version, "reason": reason}); err != nil {
			return err
		}
		// The devices that run it lose their full access in the same transaction.
		dem, err := tx.DemoteRevoked(ctx, actor, tenantID, r.ID)
		if err != nil {
			return err
		}
		r.Demoted = dem.Devices
		out = r
		return nil
	})
	if err != nil {
		return Release{}, fmt.Errorf("release.Revoke: %w", fromStore(err))
	}
	return out, nil
}

// RepoFile returns one metadata file of a tenant's image repository, by the
// name a TUF client asks for (N.root.json, timestamp.json, ...).
func (s *Service) RepoFile(ctx context.Context, tenantID, name string) ([]byte, error) {
	updated, err := s.cfg.Store.RepoUpdatedAt(ctx, tenantID)
	if errors.Is(err, store.ErrNotFound) {
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
		repo, err := s.cfg.Store.Repo(ctx, tenantID)
		if err != nil {
			return nil, fmt.Errorf("release.RepoFile: %w", fromStore(err))
		}
		updated = repo.UpdatedAt
		var st tuf.State
		if err := json.Unmarshal([]byte(repo.State), &st); err != nil {
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
	if sum, ok := strings.CutPrefix(path, "images/"); ok && deviceapi.SHA256Re.MatchString(sum) {
		has, err := s.cfg.Store.HasImage(ctx, tenantID, sum)
		if err != nil {
			return "", fmt.Errorf("release.TargetBlob: %w", err)
		}
		if has {
			return sum, nil
		}
	}
	if name, ok := strings.CutPrefix(path, "deltas/"); ok {
		from, to, _ := strings.Cut(strings.TrimSuffix(name, ".zst"), "-")
		sum, err := s.cfg.Store.DeltaBlob(ctx, tenantID, from, to)
		if err == nil {
			return sum, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("release.TargetBlob: %w", err)
		}
	}
	return "", fmt.Errorf("release.TargetBlob: %w: %s", ErrNotFound, path)
}

// RaiseVersions is what a server restored from a backup does before it serves: for every
// tenant, it re-signs the image repository's snapshot and timestamp at versions margin above the
// restored ones, makes the next targets offered for signing exceed the current version by margin
// (tuf.Repository.RaiseVersions), raises every device's director metadata by margin and re-signs
// it; each tenant's change is audited as tuf.versions.raise. Devices that fetched metadata the
// server signed after the backup hold versions above the restored ones and refuse anything lower
// as a rollback; this puts the server above them without weakening that check.
func (s *Service) RaiseVersions(ctx context.Context, margin int64) error {
	tenants, err := s.cfg.Store.RepoTenants(ctx)
	if err != nil {
		return fmt.Errorf("release.RaiseVersions: %w", err)
	}
	for _, t := range tenants {
		err := s.cfg.Store.InUpdatesTx(ctx, func(tx *store.UpdatesTx) error {
			r, err := decodeRepo(tx.Repo(ctx, t))
			if err != nil {
				return err
			}
			repo, err := tuf.OpenRepository(r.state, s.cfg.Online, s.cfg.Expiry)
			if err != nil {
				return err
			}
			if err := repo.RaiseVersions(margin, s.now()); err != nil {
				return err
			}
			if err := saveRepo(ctx, tx, t, r, repo.State(), r.director, s.now()); err != nil {
				return err
			}
			devices, err := tx.RaiseDirectorVersions(ctx, t, margin)
			if err != nil {
				return err
			}
			_, snap, ts, err := repo.Versions()
			if err != nil {
				return err
			}
			return tx.Audit(ctx, t, store.System, "tuf.versions.raise", "tuf/repository", store.Details{"margin": margin,
				"snapshot_version": snap, "timestamp_version": ts, "targets_above": repo.State().TargetsAbove, "director_devices": devices})
		})
		if err != nil {
			return fmt.Errorf("release.RaiseVersions: tenant %s: %w", t, err)
		}
	}
	// Every director metadata is due now: sign it again, at its raised version plus one.
	if err := s.refreshDirector(ctx); err != nil {
		return fmt.Errorf("release.RaiseVersions: director: %w", err)
	}
	return nil
}

// Refresh re-signs, for every tenant, the online roles whose lifetime is
// half gone, and re-issues director metadata past half its lifetime. The
// server runs it periodically (tasks.Refresher).
func (s *Service) Refresh(ctx context.Context) error {
	tenants, err := s.cfg.Store.RepoTenants(ctx)
	if err != nil {
		return fmt.Errorf("release.Refresh: %w", err)
	}
	var errs []error
	for _, t := range tenants {
		err := s.cfg.Store.InUpdatesTx(ctx, func(tx *store.UpdatesTx) error {
			r, err := decodeRepo(tx.Repo(ctx, t))
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
