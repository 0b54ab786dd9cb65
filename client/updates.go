package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// TUFOnlineKeys are the server's online public keys (TUF key objects) that
// `rampart keys init` writes into the roots it signs.
type TUFOnlineKeys struct {
	Snapshot  json.RawMessage `json:"snapshot"`
	Timestamp json.RawMessage `json:"timestamp"`
	Director  json.RawMessage `json:"director"`
}

// TUFRoots carries a tenant's image-repository root and director root
// (signed TUF metadata, verbatim). Either may be omitted in a rotation.
type TUFRoots struct {
	Root         json.RawMessage `json:"root,omitempty"`
	DirectorRoot json.RawMessage `json:"director_root,omitempty"`
}

// Image is a content-addressed artifact; ID is its hex SHA-256.
type Image struct {
	ID              string    `json:"id"`
	Component       string    `json:"component"`
	Version         string    `json:"version"`
	SecurityVersion uint64    `json:"security_version"`
	Length          int64     `json:"length"`
	CreatedAt       time.Time `json:"created_at"`
	// Authenticode is the Authenticode SHA-256 of a PE/EFI image (shim, bootloader, kernel,
	// unified kernel image), the digest UEFI firmware measures; absent for other images.
	Authenticode string `json:"authenticode,omitempty"`
	// Type is who installs the image on the device: "directory" (the agent's slot folders),
	// "rauc-bundle" (RAUC over D-Bus) or "module:NAME" (a Mender update module).
	Type string `json:"type"`
	// RAUCManifestHash is a rauc-bundle's manifest hash (SHA-256 of its manifest), which the
	// signed targets carry to the device; absent for other types.
	RAUCManifestHash string `json:"rauc_manifest_hash,omitempty"`
}

// Image types (Image.Type): who installs an image on the device. A module type is
// ImageTypeModulePrefix followed by the module's name, like "module:script".
const (
	ImageTypeDirectory    = "directory"
	ImageTypeRAUC         = "rauc-bundle"
	ImageTypeModulePrefix = "module:"
	// ImageTypeReference: held by the release only as a reference value for attestation;
	// never installed (doc/updates.md).
	ImageTypeReference = "reference"
)

// ImageUpload is what `rampart image add` says of an image besides its bytes.
type ImageUpload struct {
	Component       string
	Version         string
	SecurityVersion uint64
	// Type is "directory" (the default when empty), "rauc-bundle" or "module:NAME".
	Type string
	// RAUCManifestHash is required for a rauc-bundle (clienv reads it from the bundle).
	RAUCManifestHash string
}

// ReleaseDelta is a patch built at signing time from an earlier image.
type ReleaseDelta struct {
	From   string `json:"from"`
	To     string `json:"to"`
	SHA256 string `json:"sha256"`
	Length int64  `json:"length"`
}

// Release is a versioned set of images of a product.
type Release struct {
	ID             string         `json:"id"`
	Product        string         `json:"product"`
	Version        string         `json:"version"`
	State          string         `json:"state"`
	TargetsVersion int64          `json:"targets_version,omitempty"`
	RevokedReason  string         `json:"revoked_reason,omitempty"`
	CreatedAt      time.Time      `json:"created_at"`
	SignedAt       *time.Time     `json:"signed_at,omitempty"`
	RevokedAt      *time.Time     `json:"revoked_at,omitempty"`
	Images         []Image        `json:"images"`
	Deltas         []ReleaseDelta `json:"deltas,omitempty"`
}

// CreateReleaseRequest creates a draft release.
type CreateReleaseRequest struct {
	Version string   `json:"version"`
	Images  []string `json:"images"`
}

// TargetsPayload is targets metadata: unsigned from prepare, signed for sign.
type TargetsPayload struct {
	Targets json.RawMessage `json:"targets"`
}

// RevokeReleaseRequest marks a release vulnerable.
type RevokeReleaseRequest struct {
	Reason string `json:"reason"`
}

// TUFOnlineKeys returns the server's online public keys.
func (c *Client) TUFOnlineKeys(ctx context.Context) (TUFOnlineKeys, error) {
	var out TUFOnlineKeys
	return out, c.Do(ctx, "GET", "/api/v1/tuf/online-keys", nil, &out)
}

// InitTUF uploads the tenant's first roots.
func (c *Client) InitTUF(ctx context.Context, roots TUFRoots) error {
	return c.Do(ctx, "POST", "/api/v1/tuf/init", roots, nil)
}

// RotateTUFRoots uploads rotated roots.
func (c *Client) RotateTUFRoots(ctx context.Context, roots TUFRoots) error {
	return c.Do(ctx, "POST", "/api/v1/tuf/roots", roots, nil)
}

// TUFRoots returns the tenant's newest roots.
func (c *Client) TUFRoots(ctx context.Context) (TUFRoots, error) {
	var out TUFRoots
	return out, c.Do(ctx, "GET", "/api/v1/tuf/roots", nil, &out)
}

// AddImage streams a directory image to the server, which hashes and stores it.
func (c *Client) AddImage(ctx context.Context, r io.Reader, size int64, component, version string, securityVersion uint64) (Image, error) {
	return c.UploadImage(ctx, r, size, ImageUpload{Component: component, Version: version, SecurityVersion: securityVersion})
}

// UploadImage streams an image of any type to the server, which hashes and stores it.
func (c *Client) UploadImage(ctx context.Context, r io.Reader, size int64, up ImageUpload) (Image, error) {
	q := url.Values{"component": {up.Component}, "version": {up.Version}, "security_version": {strconv.FormatUint(up.SecurityVersion, 10)}}
	if up.Type != "" {
		q.Set("type", up.Type)
	}
	if up.RAUCManifestHash != "" {
		q.Set("rauc_manifest_hash", up.RAUCManifestHash)
	}
	// Uploads may be large: no overall timeout beyond the context's, but one that makes no
	// progress for UploadStall (the server stopped reading, or never answers) is abandoned.
	ctx, stop := c.watchStall(ctx)
	defer stop()
	r = c.progress(ctx, r)
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/api/v1/images?"+q.Encode(), r)
	if err != nil {
		return Image{}, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	h := *c.http
	h.Timeout = 0
	resp, err := h.Do(req)
	if err != nil {
		return Image{}, stallCause(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &eb) != nil || eb.Error.Message == "" {
			return Image{}, &Error{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: fmt.Sprintf("server answered %s", resp.Status)}
		}
		return Image{}, &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	var out Image
	if err := json.NewDecoder(c.progress(ctx, resp.Body)).Decode(&out); err != nil {
		return Image{}, fmt.Errorf("decode answer of image upload: %w", stallCause(ctx, err))
	}
	return out, nil
}

// CreateRelease creates a draft release of a product.
func (c *Client) CreateRelease(ctx context.Context, product string, req CreateReleaseRequest) (Release, error) {
	var out Release
	return out, c.Do(ctx, "POST", "/api/v1/products/"+esc(product)+"/releases", req, &out)
}

// GetRelease shows a release.
func (c *Client) GetRelease(ctx context.Context, product, version string) (Release, error) {
	var out Release
	return out, c.Do(ctx, "GET", "/api/v1/products/"+esc(product)+"/releases/"+esc(version), nil, &out)
}

// ListReleases lists one page of a product's releases, oldest first.
func (c *Client) ListReleases(ctx context.Context, product string, o ListOptions) (List[Release], error) {
	var out List[Release]
	return out, c.Do(ctx, "GET", "/api/v1/products/"+esc(product)+"/releases"+listQuery(o, nil), nil, &out)
}

// PrepareRelease builds the release's deltas and returns the unsigned targets to sign offline.
func (c *Client) PrepareRelease(ctx context.Context, product, version string) (TargetsPayload, error) {
	var out TargetsPayload
	// Building deltas of large images takes minutes: no overall timeout beyond the context's.
	long, h := *c, *c.http
	h.Timeout = 0
	long.http = &h
	return out, long.Do(ctx, "POST", "/api/v1/products/"+esc(product)+"/releases/"+esc(version)+"/prepare", nil, &out)
}

// SignRelease uploads the targets signed offline.
func (c *Client) SignRelease(ctx context.Context, product, version string, signed TargetsPayload) (Release, error) {
	var out Release
	return out, c.Do(ctx, "POST", "/api/v1/products/"+esc(product)+"/releases/"+esc(version)+"/sign", signed, &out)
}

// RevokeRelease marks a release vulnerable.
func (c *Client) RevokeRelease(ctx context.Context, product, version string, req RevokeReleaseRequest) (Release, error) {
	var out Release
	return out, c.Do(ctx, "POST", "/api/v1/products/"+esc(product)+"/releases/"+esc(version)+"/revoke", req, &out)
}

// InstallStatus is an install state a device reported: downloading,
// installing, installed, committed or failed (with a reason).
type InstallStatus struct {
	State   string    `json:"state"`
	Release string    `json:"release,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at,omitempty"`
}

// RevokedReleases lists the releases one call revoked.
type RevokedReleases struct {
	Revoked []Release `json:"revoked"`
}

// RevokeAffectedReleases revokes every signed release of product that
// fixed vulnerability reports name as affected.
func (c *Client) RevokeAffectedReleases(ctx context.Context, product string) (RevokedReleases, error) {
	var out RevokedReleases
	return out, c.Do(ctx, "POST", "/api/v1/products/"+esc(product)+"/releases/revoke-affected", nil, &out)
}
