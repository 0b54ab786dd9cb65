package console

import (
	"net/http"
	"net/url"

	"github.com/rampartsec/rampart/client"
)

type overviewData struct {
	Fleet       client.Fleet
	Deployments []client.Deployment
	// MoreDeployments is set when more open deployments exist than the overview shows.
	MoreDeployments bool
	Attestation     []bucket
	Seen            []bucket
}

// bucket is one bar of a count chart, with the device list that shows its devices.
type bucket struct {
	Label, Key, Link string
	Devices          int
}

// overviewDeployments caps the open deployments the overview shows with their progress.
const overviewDeployments = 10

// overview is the fleet at a glance: GET /api/v1/fleet, and the open deployments with their
// progress (GET /api/v1/deployments/{id}).
func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *Session) error {
	ctx := r.Context()
	var d overviewData
	if err := c.get(ctx, s, &d.Fleet, nil, "fleet"); err != nil {
		return err
	}
	for _, state := range []string{"active", "paused"} {
		var l client.List[client.Deployment]
		if err := c.get(ctx, s, &l, url.Values{"state": {state}, "limit": {"10"}}, "deployments"); err != nil {
			return err
		}
		d.MoreDeployments = d.MoreDeployments || l.Next != ""
		for _, dep := range l.Items {
			if len(d.Deployments) == overviewDeployments {
				d.MoreDeployments = true
				break
			}
			var full client.Deployment
			if err := c.get(ctx, s, &full, nil, "deployments", dep.ID); err != nil {
				return err
			}
			d.Deployments = append(d.Deployments, full)
		}
	}
	for _, b := range []struct{ label, key, filter string }{
		{"Affirming", "affirming", "attestation=affirming"}, {"Warning", "warning", "attestation=warning"},
		{"Update-only", "update-only", "update_only=true"}, {"Not attested", "none", "attestation=none"},
	} {
		d.Attestation = append(d.Attestation, bucket{Label: b.label, Key: b.key, Link: "/devices?" + b.filter, Devices: d.Fleet.ByAttestation[b.key]})
	}
	for _, b := range []struct{ label, key string }{{"Online", "online"}, {"Overdue", "overdue"}, {"Offline", "offline"}} {
		d.Seen = append(d.Seen, bucket{Label: b.label, Key: b.key, Link: "/devices?seen=" + b.key, Devices: d.Fleet.BySeen[b.key]})
	}
	c.render(w, r, http.StatusOK, "overview", s, "Fleet overview", d)
	return nil
}
