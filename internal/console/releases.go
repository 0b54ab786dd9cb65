package console

import (
	"net/http"
	"net/url"

	"github.com/rampartsec/rampart/client"
)

type releasesData struct {
	Products []client.Product
	Product  string
	Releases client.List[client.Release]
	// Devices counts the product's devices on each release (GET /api/v1/fleet?product=), the
	// 20 most run; Counted tells those from releases no device of the product runs.
	Devices map[string]int
	Counted bool
	Query   url.Values
}

// releases lists one product's releases with their images, signature and revocation state
// (GET /api/v1/products/{p}/releases) and the devices on each (GET /api/v1/fleet?product=).
func (c *Console) releases(w http.ResponseWriter, r *http.Request, s *Session) error {
	ctx := r.Context()
	d := releasesData{Product: r.URL.Query().Get("product"), Devices: map[string]int{}}
	var prods client.List[client.Product]
	if err := c.get(ctx, s, &prods, url.Values{"limit": {"500"}}, "products"); err != nil {
		return err
	}
	d.Products = prods.Items
	if d.Product == "" && len(d.Products) > 0 {
		d.Product = d.Products[0].Name
	}
	d.Query = url.Values{"product": {d.Product}}
	if d.Product != "" {
		if err := c.get(ctx, s, &d.Releases, pageQuery(r), "products", d.Product, "releases"); err != nil {
			return err
		}
		var f client.Fleet
		if err := c.get(ctx, s, &f, url.Values{"product": {d.Product}}, "fleet"); err != nil {
			return err
		}
		for _, rc := range f.ByRelease {
			d.Devices[rc.Release] = rc.Devices
		}
		d.Counted = f.OtherReleases == 0
	}
	c.render(w, r, http.StatusOK, "releases", s, "Releases", d)
	return nil
}

type releaseData struct {
	Release client.Release
	Devices int
	Revoked bool // just revoked by this request
}

// release shows one release (GET /api/v1/products/{p}/releases/{v}).
func (c *Console) release(w http.ResponseWriter, r *http.Request, s *Session) error {
	return c.renderRelease(w, r, s, false)
}

func (c *Console) renderRelease(w http.ResponseWriter, r *http.Request, s *Session, revoked bool) error {
	ctx := r.Context()
	product, version := r.PathValue("product"), r.PathValue("version")
	d := releaseData{Revoked: revoked}
	if err := c.get(ctx, s, &d.Release, nil, "products", product, "releases", version); err != nil {
		return err
	}
	var f client.Fleet
	if err := c.get(ctx, s, &f, url.Values{"product": {product}}, "fleet"); err != nil {
		return err
	}
	d.Devices = -1 // not among the 20 most run
	if f.OtherReleases == 0 {
		d.Devices = 0
	}
	for _, rc := range f.ByRelease {
		if rc.Release == version {
			d.Devices = rc.Devices
		}
	}
	c.render(w, r, http.StatusOK, "release", s, product+" "+version, d)
	return nil
}

// revokeRelease marks a release vulnerable (POST /api/v1/products/{p}/releases/{v}/revoke).
func (c *Console) revokeRelease(w http.ResponseWriter, r *http.Request, s *Session) error {
	product, version := r.PathValue("product"), r.PathValue("version")
	var out client.Release
	if err := c.call(r.Context(), s, http.MethodPost, apiPath(nil, "products", product, "releases", version, "revoke"),
		client.RevokeReleaseRequest{Reason: r.PostForm.Get("reason")}, &out); err != nil {
		return err
	}
	return c.renderRelease(w, r, s, true)
}
