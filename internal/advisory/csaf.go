package advisory

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The CSAF 2.0 document, limited to the parts a security advisory of one
// report uses. Field names and nesting follow the OASIS schema.
type csafDoc struct {
	Document        csafDocument `json:"document"`
	ProductTree     csafTree     `json:"product_tree"`
	Vulnerabilities []csafVuln   `json:"vulnerabilities"`
}

type csafDocument struct {
	Category    string        `json:"category"`
	CSAFVersion string        `json:"csaf_version"`
	Publisher   csafPublisher `json:"publisher"`
	Title       string        `json:"title"`
	Tracking    csafTracking  `json:"tracking"`
	Notes       []csafNote    `json:"notes"`
	Lang        string        `json:"lang"`
}

type csafPublisher struct {
	Category  string `json:"category"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

type csafTracking struct {
	ID                 string         `json:"id"`
	Status             string         `json:"status"`
	Version            string         `json:"version"`
	InitialReleaseDate string         `json:"initial_release_date"`
	CurrentReleaseDate string         `json:"current_release_date"`
	RevisionHistory    []csafRevision `json:"revision_history"`
	Generator          csafGenerator  `json:"generator"`
}

type csafGenerator struct {
	Engine csafEngine `json:"engine"`
	Date   string     `json:"date"`
}

type csafEngine struct {
	Name string `json:"name"`
}

type csafRevision struct {
	Date    string `json:"date"`
	Number  string `json:"number"`
	Summary string `json:"summary"`
}

type csafNote struct {
	Category string `json:"category"`
	Title    string `json:"title,omitempty"`
	Text     string `json:"text"`
}

type csafTree struct {
	Branches []csafBranch `json:"branches"`
}

type csafBranch struct {
	Category string           `json:"category"`
	Name     string           `json:"name"`
	Branches []csafBranch     `json:"branches,omitempty"`
	Product  *csafFullProduct `json:"product,omitempty"`
}

type csafFullProduct struct {
	Name      string `json:"name"`
	ProductID string `json:"product_id"`
}

type csafVuln struct {
	CVE             string            `json:"cve,omitempty"`
	IDs             []csafID          `json:"ids,omitempty"`
	Title           string            `json:"title"`
	Notes           []csafNote        `json:"notes"`
	DiscoveryDate   string            `json:"discovery_date,omitempty"`
	ReleaseDate     string            `json:"release_date,omitempty"`
	Acknowledgments []csafAck         `json:"acknowledgments,omitempty"`
	ProductStatus   csafProductStatus `json:"product_status"`
	Remediations    []csafRemediation `json:"remediations"`
	Scores          []csafScore       `json:"scores,omitempty"`
}

type csafID struct {
	SystemName string `json:"system_name"`
	Text       string `json:"text"`
}

type csafAck struct {
	Names   []string `json:"names"`
	Summary string   `json:"summary,omitempty"`
}

type csafProductStatus struct {
	Fixed         []string `json:"fixed,omitempty"`
	KnownAffected []string `json:"known_affected,omitempty"`
}

type csafRemediation struct {
	Category   string   `json:"category"`
	Details    string   `json:"details"`
	ProductIDs []string `json:"product_ids"`
	Date       string   `json:"date,omitempty"`
}

type csafScore struct {
	Products []string `json:"products"`
	CVSSv3   csafCVSS `json:"cvss_v3"`
}

type csafCVSS struct {
	Version      string  `json:"version"`
	VectorString string  `json:"vectorString"`
	BaseScore    float64 `json:"baseScore"`
	BaseSeverity string  `json:"baseSeverity"`
}

// CSAF writes a CSAF 2.0 document of the security advisory profile
// (category csaf_security_advisory). The product tree holds one
// product_version branch per affected and fixed release; the vulnerability
// lists them as known_affected and fixed, with a vendor_fix remediation and
// the CVSS 3.1 score (CSAF 2.0 has no field for CVSS 4.0, which goes into a
// note instead).
func CSAF(in Input) ([]byte, error) {
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("advisory.CSAF: %w", err)
	}
	now := rfc3339(in.Now)
	ids := func(versions []string) []string {
		out := make([]string, len(versions))
		for i, v := range versions {
			out[i] = productID(in.Product, v)
		}
		return out
	}
	var versions []csafBranch
	for _, v := range append(append([]string(nil), in.Affected...), in.Fixed...) {
		versions = append(versions, csafBranch{
			Category: "product_version",
			Name:     v,
			Product:  &csafFullProduct{Name: in.Publisher.Name + " " + in.Product + " " + v, ProductID: productID(in.Product, v)},
		})
	}
	affected, fixed := ids(in.Affected), ids(in.Fixed)

	v := csafVuln{
		CVE:   in.CVE,
		IDs:   []csafID{{SystemName: in.Publisher.Name + " " + in.Program, Text: in.TrackingID}},
		Title: in.Title,
		Notes: []csafNote{{Category: "description", Title: "Vulnerability description", Text: in.Description}},
		ProductStatus: csafProductStatus{
			KnownAffected: affected,
			Fixed:         fixed,
		},
		Remediations: []csafRemediation{{
			Category:   "vendor_fix",
			Details:    "Update " + in.Product + " to " + strings.Join(in.Fixed, " or ") + " or later.",
			ProductIDs: affected,
		}},
		DiscoveryDate: rfc3339(in.DiscoveredAt),
	}
	if !in.FixedAt.IsZero() {
		v.ReleaseDate = rfc3339(in.FixedAt)
		v.Remediations[0].Date = rfc3339(in.FixedAt)
	}
	if in.Researcher != "" {
		v.Acknowledgments = []csafAck{{Names: []string{in.Researcher}, Summary: "reported the vulnerability to the " + in.Program + " program"}}
	}
	if s := in.Scores.V31; s != nil {
		v.Scores = []csafScore{{Products: affected, CVSSv3: csafCVSS{
			Version: "3.1", VectorString: s.Vector, BaseScore: s.Score, BaseSeverity: strings.ToUpper(string(s.Severity)),
		}}}
	}
	if s := in.Scores.V40; s != nil {
		v.Notes = append(v.Notes, csafNote{Category: "other", Title: "CVSS v4.0",
			Text: fmt.Sprintf("%s (%s %.1f, %s)", s.Vector, s.Nomenclature, s.Score, strings.ToUpper(string(s.Severity)))})
	}

	doc := csafDoc{
		Document: csafDocument{
			Category:    "csaf_security_advisory",
			CSAFVersion: "2.0",
			Lang:        "en",
			Publisher:   csafPublisher{Category: "vendor", Name: in.Publisher.Name, Namespace: in.Publisher.Namespace},
			Title:       in.Title,
			Notes: []csafNote{{Category: "summary", Title: "Summary",
				Text: fmt.Sprintf("%s in %s %s, fixed in %s.", in.Title, in.Product, strings.Join(in.Affected, ", "), strings.Join(in.Fixed, ", "))}},
			Tracking: csafTracking{
				ID:                 in.TrackingID,
				Status:             "final",
				Version:            "1",
				InitialReleaseDate: now,
				CurrentReleaseDate: now,
				RevisionHistory:    []csafRevision{{Date: now, Number: "1", Summary: "Initial version."}},
				Generator:          csafGenerator{Engine: csafEngine{Name: "rampart"}, Date: now},
			},
		},
		ProductTree: csafTree{Branches: []csafBranch{{
			Category: "vendor",
			Name:     in.Publisher.Name,
			Branches: []csafBranch{{Category: "product_name", Name: in.Product, Branches: versions}},
		}}},
		Vulnerabilities: []csafVuln{v},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("advisory.CSAF: %w", err)
	}
	return b, nil
}
