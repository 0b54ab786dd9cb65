package console

import (
	"net/http"
	"net/url"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/api"
)

// deviceFilters are the device list's query parameters, the API's own names, so that a
// console URL and an API call filter alike.
var deviceFilters = []string{"product", "group", "release", "attestation", "update_only", "seen", "q", "sort", "limit", "after"}

type devicesData struct {
	Devices  client.List[client.Device]
	Query    url.Values
	Filter   map[string]string
	Products []client.Product
	Groups   []client.Group
	Sorts    []option
	Attest   []option
	Seen     []option
}

type option struct{ Value, Label string }

// devices lists devices, filtered, sorted and paged in the database (GET /api/v1/devices).
func (c *Console) devices(w http.ResponseWriter, r *http.Request, s *Session) error {
	ctx := r.Context()
	in := r.URL.Query()
	q := url.Values{}
	d := devicesData{Filter: map[string]string{}}
	for _, k := range deviceFilters {
		if v := in.Get(k); v != "" {
			q.Set(k, v)
			d.Filter[k] = v
		}
	}
	if err := c.get(ctx, s, &d.Devices, q, "devices"); err != nil {
		return err
	}
	var prods client.List[client.Product]
	if err := c.get(ctx, s, &prods, url.Values{"limit": {"500"}}, "products"); err != nil {
		return err
	}
	d.Products = prods.Items
	if p := q.Get("product"); p != "" {
		var gs client.List[client.Group]
		// Only the names, for the filter: counting the groups' devices would read every
		// device of the product.
		if err := c.get(ctx, s, &gs, url.Values{"limit": {"500"}, "count": {"false"}}, "products", p, "groups"); err != nil {
			return err
		}
		d.Groups = gs.Items
	}
	d.Query = q
	d.Sorts = []option{{"id", "ID"}, {"seen", "Last seen, newest first"}, {"stale", "Last seen, oldest first"}, {"release", "Release"}}
	d.Attest = []option{{"", "Any"}, {"affirming", "Affirming"}, {"warning", "Warning"}, {"contraindicated", "Contraindicated"}, {"none", "Not attested"}}
	d.Seen = []option{{"", "Any"}, {"online", "Online"}, {"overdue", "Overdue"}, {"offline", "Offline"}}
	c.render(w, r, http.StatusOK, "devices", s, "Devices", d)
	return nil
}

type deviceData struct {
	Device       client.Device
	Attestations []client.Attestation
	Latest       *client.Attestation // the newest attestation that granted a certificate
	Installs     client.List[client.InstallReport]
	Crashes      client.List[client.DeviceCrash]
	Audit        client.List[client.AuditRecord]
	// AuditRefused is the API's sentence when the session may not read the audit log.
	AuditRefused string
	Query        url.Values
}

// device shows one device: GET /api/v1/devices/{id}, its attestations, installs, crashes and
// audit records (each its own API route, each paged).
func (c *Console) device(w http.ResponseWriter, r *http.Request, s *Session) error {
	ctx := r.Context()
	id := r.PathValue("id")
	in := r.URL.Query()
	var d deviceData
	if err := c.get(ctx, s, &d.Device, nil, "devices", id); err != nil {
		return err
	}
	var atts client.List[client.Attestation]
	if err := c.get(ctx, s, &atts, nil, "devices", id, "attestations"); err != nil {
		return err
	}
	d.Attestations = atts.Items
	for i := range d.Attestations {
		if d.Attestations[i].CertSerial != "" {
			d.Latest = &d.Attestations[i]
			break
		}
	}
	if err := c.get(ctx, s, &d.Installs, sub(in, "installs"), "devices", id, "installs"); err != nil {
		return err
	}
	if err := c.get(ctx, s, &d.Crashes, sub(in, "crashes"), "devices", id, "crashes"); err != nil {
		return err
	}
	aq := sub(in, "audit")
	aq.Set("target", "device/"+id)
	aq.Set("order", "newest")
	if err := c.get(ctx, s, &d.Audit, aq, "audit"); err != nil {
		if e := api.AsError(err); e.Status != http.StatusForbidden {
			return err
		} else {
			d.AuditRefused = e.Message
		}
	}
	d.Query = in
	c.render(w, r, http.StatusOK, "device", s, "Device "+shortID(id), d)
	return nil
}

// sub reads the cursor of one of a page's lists, named <name>_after, for its API call (20 a
// page).
func sub(in url.Values, name string) url.Values {
	q := url.Values{"limit": {"20"}}
	if v := in.Get(name + "_after"); v != "" {
		q.Set("after", v)
	}
	return q
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}
