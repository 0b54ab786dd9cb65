package console

import (
	"net/http"
	"net/url"

	"github.com/rampartsec/rampart/client"
)

type coverageData struct {
	Products []client.Product
	Product  string
	Group    string
	Release  string
	Coverage client.Coverage
	Series   client.CoverageSeries
	Chart    any
	Selected *client.ReleaseCoverage
}

// coveragePage charts a release's coverage over time (GET /api/v1/coverage/series), with the
// product's releases, their shares now and their milestones (GET /api/v1/coverage).
func (c *Console) coveragePage(w http.ResponseWriter, r *http.Request, s *Session) error {
	ctx := r.Context()
	q := r.URL.Query()
	d := coverageData{Product: q.Get("product"), Group: q.Get("group"), Release: q.Get("release")}
	var prods client.List[client.Product]
	if err := c.get(ctx, s, &prods, url.Values{"limit": {"500"}}, "products"); err != nil {
		return err
	}
	d.Products = prods.Items
	if d.Product == "" && len(d.Products) > 0 {
		d.Product = d.Products[0].Name
	}
	if d.Product != "" {
		cq := url.Values{"product": {d.Product}}
		if d.Group != "" {
			cq.Set("group", d.Group)
		}
		if err := c.get(ctx, s, &d.Coverage, cq, "coverage"); err != nil {
			return err
		}
		if d.Release == "" {
			for _, rc := range d.Coverage.Releases {
				if !rc.Preinstalled {
					d.Release = rc.Release // newest first
					break
				}
			}
		}
		for i, rc := range d.Coverage.Releases {
			if rc.Release == d.Release {
				d.Selected = &d.Coverage.Releases[i]
			}
		}
		if d.Release != "" {
			cq.Set("release", d.Release)
			if err := c.get(ctx, s, &d.Series, cq, "coverage", "series"); err != nil {
				return err
			}
			var marks []chartMark
			if d.Selected != nil {
				for _, m := range d.Selected.Milestones {
					if m.Reached && m.At != nil {
						marks = append(marks, chartMark{At: *m.At, Label: m.Threshold})
					}
				}
			}
			d.Chart = coverageSVG("Devices on "+d.Product+" "+d.Release+" or newer", d.Series, marks, c.now())
		}
	}
	c.render(w, r, http.StatusOK, "coverage", s, "Coverage", d)
	return nil
}
