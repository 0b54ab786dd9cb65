package api

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/release"
)

// registerUpdates declares the routes of signed updates: the tenant's TUF
// roots, images and releases.
func (a *API) registerUpdates() {
	a.handle("GET /api/v1/tuf/online-keys", admin, a.tufOnlineKeys, doc{summary: "The server's online TUF public keys (snapshot, timestamp, director), for `rampart keys init`", response: client.TUFOnlineKeys{}})
	a.handle("POST /api/v1/tuf/init", admin, a.tufInit, doc{summary: "Install the tenant's first image-repository and director roots, signed offline", body: client.TUFRoots{}, response: client.TUFRoots{}, status: http.StatusCreated})
	a.handle("POST /api/v1/tuf/roots", admin, a.tufRotate, doc{summary: "Install rotated roots, signed offline by the old and new root keys", body: client.TUFRoots{}, response: client.TUFRoots{}})
	a.handle("GET /api/v1/tuf/roots", reader, a.tufRoots, doc{summary: "The tenant's newest image-repository and director roots", response: client.TUFRoots{}})

	a.handle("POST /api/v1/images", operator, a.addImage, doc{summary: "Upload an image as application/octet-stream; it is stored by its SHA-256", response: client.Image{}, status: http.StatusCreated, query: []string{"component", "version", "security_version", "type", "rauc_manifest_hash"}})

	a.handle("POST /api/v1/products/{product}/releases", operator, a.createRelease, doc{summary: "Create a draft release from images", body: client.CreateReleaseRequest{}, response: client.Release{}, status: http.StatusCreated})
	a.handle("GET /api/v1/products/{product}/releases", reader, a.listReleases, doc{summary: "List a product's releases in the order they were created, with their images", response: client.List[client.Release]{}})
	a.handle("GET /api/v1/products/{product}/releases/{version}", reader, a.getRelease, doc{summary: "Show a release", response: client.Release{}})
	a.handle("POST /api/v1/products/{product}/releases/{version}/prepare", admin, a.prepareRelease, doc{summary: "Build the release's deltas and return the unsigned targets metadata to sign offline", response: client.TargetsPayload{}})
	a.handle("POST /api/v1/products/{product}/releases/{version}/sign", admin, a.signRelease, doc{summary: "Install the targets metadata signed offline for the release", body: client.TargetsPayload{}, response: client.Release{}})
	a.handle("POST /api/v1/products/{product}/releases/{version}/revoke", admin, a.revokeRelease, doc{summary: "Mark a release vulnerable; it stays in history", body: client.RevokeReleaseRequest{}, response: client.Release{}})
	a.handle("POST /api/v1/products/{product}/releases/revoke-affected", admin, a.revokeAffected, doc{summary: "Revoke every signed release that fixed vulnerability reports name as affected", response: client.RevokedReleases{}})
}

func (a *API) updates() (*release.Service, error) {
	if a.releases == nil {
		return nil, newError(http.StatusServiceUnavailable, CodeUnavailable, "signed updates are not configured on this server")
	}
	return a.releases, nil
}

// releaseError maps the release service's errors to answers.
func releaseError(err error, what string) error {
	switch {
	case errors.Is(err, release.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: what + " not found", Err: err}
	case errors.Is(err, release.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: what + " already exists or differs", Err: err}
	case errors.Is(err, release.ErrConcurrently):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "the repository changed concurrently; retry", Err: err}
	case errors.Is(err, release.ErrWrongState):
		return &Error{Status: http.StatusConflict, Code: CodeWrongState, Message: what + " is not in a state that allows this", Err: err}
	case errors.Is(err, release.ErrNotInit):
		return &Error{Status: http.StatusConflict, Code: CodeNoKeys, Message: "the tenant has no update keys yet; run `rampart keys init`", Err: err}
	case errors.Is(err, release.ErrTooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: "the image is larger than the server accepts", Err: err}
	case errors.Is(err, release.ErrInvalid):
		return fromPublic(err)
	}
	return storeError(err, what)
}

func (a *API) tufOnlineKeys(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	pub := svc.OnlinePublic()
	var out client.TUFOnlineKeys
	for _, kv := range []struct {
		dst *json.RawMessage
		key any
	}{{&out.Snapshot, pub.Snapshot}, {&out.Timestamp, pub.Timestamp}, {&out.Director, pub.Director}} {
		b, err := json.Marshal(kv.key)
		if err != nil {
			return internal(err)
		}
		*kv.dst = b
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) tufInit(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	var req client.TUFRoots
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if len(req.Root) == 0 || len(req.DirectorRoot) == 0 {
		return badRequest("root and director_root are both required")
	}
	if err := svc.Init(r.Context(), p.actor(), p.tenantID, req.Root, req.DirectorRoot); err != nil {
		return releaseError(err, "update keys")
	}
	writeJSON(w, http.StatusCreated, req)
	return nil
}

func (a *API) tufRotate(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	var req client.TUFRoots
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if len(req.Root) == 0 && len(req.DirectorRoot) == 0 {
		return badRequest("root or director_root is required")
	}
	if err := svc.AddRoot(r.Context(), p.actor(), p.tenantID, nilIfEmpty(req.Root), nilIfEmpty(req.DirectorRoot)); err != nil {
		return releaseError(err, "root")
	}
	return a.tufRoots(w, r, p)
}

func nilIfEmpty(b json.RawMessage) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func (a *API) tufRoots(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	root, droot, err := svc.Roots(r.Context(), p.tenantID)
	if err != nil {
		return releaseError(err, "update keys")
	}
	writeJSON(w, http.StatusOK, client.TUFRoots{Root: root, DirectorRoot: droot})
	return nil
}

func imageOut(im release.Image) client.Image {
	return client.Image{ID: im.SHA256, Component: im.Component, Version: im.Version, SecurityVersion: im.SecurityVersion, Length: im.Length,
		CreatedAt: im.CreatedAt, Authenticode: im.Authenticode, Type: im.Type, RAUCManifestHash: im.RAUCManifestHash}
}

func releaseOut(r release.Release) client.Release {
	out := client.Release{ID: r.ID, Product: r.Product, Version: r.Version, State: r.State, TargetsVersion: r.TargetsVersion,
		RevokedReason: r.RevokedReason, CreatedAt: r.CreatedAt, SignedAt: r.SignedAt, RevokedAt: r.RevokedAt, Images: []client.Image{}}
	for _, im := range r.Images {
		out.Images = append(out.Images, imageOut(im))
	}
	for _, d := range r.Deltas {
		out.Deltas = append(out.Deltas, client.ReleaseDelta{From: d.From, To: d.To, SHA256: d.SHA256, Length: d.Length})
	}
	return out
}

// addImage streams the body into the blob store; it is never held whole in
// memory, and the service caps its size.
func (a *API) addImage(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/octet-stream" {
			return newError(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "an image is uploaded as application/octet-stream")
		}
	}
	q := r.URL.Query()
	var secver uint64
	if v := q.Get("security_version"); v != "" {
		if secver, err = strconv.ParseUint(v, 10, 53); err != nil {
			return badRequest("security_version must be a whole number")
		}
	}
	im, err := svc.AddImageAs(r.Context(), p.actor(), p.tenantID, r.Body, release.ImageAttrs{Component: q.Get("component"), Version: q.Get("version"),
		SecurityVersion: secver, Type: q.Get("type"), RAUCManifestHash: q.Get("rauc_manifest_hash")})
	if err != nil {
		return releaseError(err, "image")
	}
	writeJSON(w, http.StatusCreated, imageOut(im))
	return nil
}

func (a *API) createRelease(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	var req client.CreateReleaseRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	product := r.PathValue("product")
	rel, err := svc.CreateRelease(r.Context(), p.actor(), p.tenantID, product, req.Version, req.Images)
	if err != nil {
		return releaseError(err, "release "+product+" "+req.Version)
	}
	writeJSON(w, http.StatusCreated, releaseOut(rel))
	return nil
}

func (a *API) getRelease(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	product, version := r.PathValue("product"), r.PathValue("version")
	rel, err := svc.GetRelease(r.Context(), p.tenantID, product, version)
	if err != nil {
		return releaseError(err, "release "+product+" "+version)
	}
	writeJSON(w, http.StatusOK, releaseOut(rel))
	return nil
}

func (a *API) listReleases(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	product := r.PathValue("product")
	rels, next, err := svc.ListReleases(r.Context(), p.tenantID, product, pg.After, pg.Limit)
	if err != nil {
		return releaseError(err, "product "+product)
	}
	list(w, rels, next, releaseOut)
	return nil
}

func (a *API) prepareRelease(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	product, version := r.PathValue("product"), r.PathValue("version")
	payload, err := svc.PrepareSign(r.Context(), p.tenantID, product, version)
	if err != nil {
		return releaseError(err, "release "+product+" "+version)
	}
	writeJSON(w, http.StatusOK, client.TargetsPayload{Targets: payload})
	return nil
}

func (a *API) signRelease(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	var req client.TargetsPayload
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if len(req.Targets) == 0 {
		return badRequest("targets is required")
	}
	product, version := r.PathValue("product"), r.PathValue("version")
	rel, err := svc.Sign(r.Context(), p.actor(), p.tenantID, product, version, req.Targets)
	if err != nil {
		return releaseError(err, "release "+product+" "+version)
	}
	writeJSON(w, http.StatusOK, releaseOut(rel))
	return nil
}

func (a *API) revokeRelease(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	var req client.RevokeReleaseRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	product, version := r.PathValue("product"), r.PathValue("version")
	rel, err := svc.Revoke(r.Context(), p.actor(), p.tenantID, product, version, req.Reason)
	if err != nil {
		return releaseError(err, "release "+product+" "+version)
	}
	a.wakeDemoted(rel.Demoted)
	writeJSON(w, http.StatusOK, releaseOut(rel))
	return nil
}

// deviceDirector serves the calling device's director metadata (and the
// director's roots). Update-only certificates are accepted: a device that
// runs revoked software must still be able to heal.
func (a *API) deviceDirector(w http.ResponseWriter, r *http.Request, d *device) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	name := r.PathValue("file")
	b, err := svc.DirectorFile(r.Context(), d.tenantID, d.id, name)
	if errors.Is(err, release.ErrUnregistered) {
		return d.unregistered()
	} else if err != nil {
		return releaseError(err, "director metadata "+name)
	}
	h := w.Header()
	h["Content-Type"], h["Cache-Control"] = directorContentType, directorCacheControl
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.Write(b)
	return nil
}

// The director files' constant headers, shared by every answer (net/http only reads them; a
// later Add appends to a full slice, so copies): setting each anew allocated its slice on
// every check-in.
var (
	directorContentType  = []string{"application/json"}
	directorCacheControl = []string{"no-store"}
)

// deviceInstallStatus records an install state the device reports.
func (a *API) deviceInstallStatus(w http.ResponseWriter, r *http.Request, d *device) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	var req deviceapi.InstallStatus
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if !req.At.IsZero() {
		return badRequest("at is set by the server")
	}
	rep, err := svc.ReportInstall(r.Context(), d.tenantID, d.id, release.InstallReport{State: string(req.State), Release: req.Release, Reason: req.Reason})
	if err != nil {
		return releaseError(err, "install status")
	}
	if release.Failed(rep.State) {
		a.evidence(d.tenantID, d.id) // the install_failures criterion is checked now
	}
	writeJSON(w, http.StatusOK, deviceapi.InstallStatus{State: deviceapi.InstallState(rep.State), Release: rep.Release, Reason: rep.Reason, At: rep.At})
	return nil
}

func (a *API) revokeAffected(w http.ResponseWriter, r *http.Request, p *principal) error {
	svc, err := a.updates()
	if err != nil {
		return err
	}
	product := r.PathValue("product")
	if _, err := a.store.ProductByName(r.Context(), p.tenantID, product); err != nil {
		return storeError(err, "product "+product)
	}
	revoked, err := svc.RevokeAffected(r.Context(), p.actor(), p.tenantID, product, a.store)
	for _, rel := range revoked {
		a.wakeDemoted(rel.Demoted)
	}
	if err != nil {
		return releaseError(err, "releases of "+product)
	}
	out := client.RevokedReleases{Revoked: []client.Release{}}
	for _, rel := range revoked {
		out.Revoked = append(out.Revoked, releaseOut(rel))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
