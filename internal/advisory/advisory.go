// Package advisory writes the security advisories of a fixed report: a CSAF
// 2.0 security advisory and an OpenVEX document, with the affected and fixed
// releases as product versions.
//
// It depends only on internal/program, internal/public and
// github.com/openvex/go-vex. The admin API, the CLI and the demo may import it.
package advisory

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/openvex/go-vex/pkg/vex"

	"github.com/rampartsec/rampart/internal/program"
	"github.com/rampartsec/rampart/internal/public"
)

// Formats.
const (
	FormatCSAF    = "csaf"
	FormatOpenVEX = "openvex"
)

// ErrInvalid reports an input from which no valid advisory can be written.
var ErrInvalid = errors.New("advisory input is invalid")

// Publisher is the organisation that issues the advisory.
type Publisher struct {
	// Name of the vendor, e.g. "Example Devices Ltd".
	Name string
	// Namespace is the vendor's web address, an absolute https URL; it
	// prefixes document identifiers.
	Namespace string
}

// Input is everything an advisory says.
type Input struct {
	Publisher Publisher
	// TrackingID identifies the advisory, e.g. RAMPART-EDGE-CHALLENGE-42.
	TrackingID string
	// ReportID, Program, Title and Description describe the vulnerability.
	ReportID    int64
	Program     string
	Title       string
	Description string
	// CVE is the CVE identifier when one was assigned, else empty.
	CVE string
	// Scores carries the CVSS 3.1 and 4.0 scores; CSAF 2.0 holds only 3.1.
	Scores program.Scores
	// Product is the affected product's name.
	Product string
	// Affected and Fixed are release versions of Product.
	Affected []string
	Fixed    []string
	// Researcher is credited in the acknowledgments when not empty.
	Researcher string
	// DiscoveredAt is when the report arrived; FixedAt when the fix shipped;
	// Now the issue time of the advisory.
	DiscoveredAt time.Time
	FixedAt      time.Time
	Now          time.Time
}

var (
	trackingRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	cveRE      = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)
)

// Validate checks that an advisory can be written from in.
func (in Input) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.TrimSpace(in.Publisher.Name) == "" {
		bad("publisher name: required")
	}
	if u, err := url.Parse(in.Publisher.Namespace); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("publisher namespace: %q must be an absolute https URL", in.Publisher.Namespace)
	}
	if !trackingRE.MatchString(in.TrackingID) {
		bad("tracking id: %q must be letters, digits, dots, dashes or underscores", in.TrackingID)
	}
	if strings.TrimSpace(in.Title) == "" {
		bad("title: required")
	}
	if strings.TrimSpace(in.Description) == "" {
		bad("description: required")
	}
	if in.CVE != "" && !cveRE.MatchString(in.CVE) {
		bad("cve: %q is not a CVE identifier", in.CVE)
	}
	if !program.ValidProductName(in.Product) {
		bad("product: %q is not a product name", in.Product)
	}
	if len(in.Fixed) == 0 {
		bad("fixed: the report has no fix release; advisories are written for fixed reports")
	}
	if len(in.Affected) == 0 {
		bad("affected: at least one affected release is required")
	}
	for _, v := range append(slices.Clone(in.Affected), in.Fixed...) {
		if !program.ValidVersion(v) {
			bad("release %q is not a release version", v)
		}
	}
	for _, v := range in.Fixed {
		if slices.Contains(in.Affected, v) {
			bad("release %s is listed both as affected and as fixed", v)
		}
	}
	if in.Now.IsZero() || in.DiscoveredAt.IsZero() {
		bad("dates: discovery and issue times are required")
	}
	if len(errs) > 0 {
		return public.Errorf(public.Invalid, "%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

var fileNameRE = regexp.MustCompile(`[^+\-a-z0-9]+`)

// FileName is the name a document of the given format is published under.
// CSAF 2.0 (section 5.1) derives it from the tracking ID: lower case, each run
// of characters other than a-z, 0-9, + and - replaced by one underscore, and
// the extension .json; csaf_validator and csaf_checker refuse any other name.
// OpenVEX has no naming rule; its document takes the same stem with
// .openvex.json, so the two sit side by side.
func FileName(format, trackingID string) string {
	stem := fileNameRE.ReplaceAllString(strings.ToLower(trackingID), "_")
	if format == FormatOpenVEX {
		return stem + ".openvex.json"
	}
	return stem + ".json"
}

// DocumentFileName is FileName for an exported document: the tracking ID of a
// CSAF advisory (document.tracking.id), or the last element of an OpenVEX
// document's @id.
func DocumentFileName(doc []byte) (string, error) {
	var d struct {
		Document *struct {
			Tracking struct {
				ID string `json:"id"`
			} `json:"tracking"`
		} `json:"document"`
		ID string `json:"@id"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return "", fmt.Errorf("advisory.DocumentFileName: %w", err)
	}
	switch {
	case d.Document != nil && d.Document.Tracking.ID != "":
		return FileName(FormatCSAF, d.Document.Tracking.ID), nil
	case d.ID != "":
		if i := strings.LastIndex(d.ID, "/"); i >= 0 && strings.HasSuffix(d.ID, ".openvex.json") {
			return FileName(FormatOpenVEX, strings.TrimSuffix(d.ID[i+1:], ".openvex.json")), nil
		}
	}
	return "", fmt.Errorf("advisory.DocumentFileName: %w", public.Errorf(public.Invalid, "%w: neither a CSAF tracking ID nor an OpenVEX @id", ErrInvalid))
}

// productID names one release of the product in both documents.
func productID(product, version string) string { return product + "-" + version }

// purl is the package URL of one release, used as its OpenVEX identifier.
func purl(vendor, product, version string) string {
	ns := strings.ToLower(strings.Join(strings.Fields(vendor), "-"))
	return "pkg:generic/" + url.PathEscape(ns) + "/" + url.PathEscape(product) + "@" + url.PathEscape(version)
}

// vulnName is the vulnerability's name: its CVE when assigned, else the tracking ID.
func (in Input) vulnName() string {
	if in.CVE != "" {
		return in.CVE
	}
	return in.TrackingID
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Export writes the advisory in the given format.
func Export(format string, in Input) ([]byte, error) {
	switch format {
	case FormatCSAF:
		return CSAF(in)
	case FormatOpenVEX:
		return OpenVEX(in)
	default:
		return nil, fmt.Errorf("advisory.Export: %w", public.Errorf(public.Invalid, "%w: format %q is not csaf or openvex", ErrInvalid, format))
	}
}

// OpenVEX writes an OpenVEX document with one statement for the affected
// releases and one for the fixed ones.
func OpenVEX(in Input) ([]byte, error) {
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("advisory.OpenVEX: %w", err)
	}
	now := in.Now.UTC()
	products := func(versions []string) []vex.Product {
		out := make([]vex.Product, len(versions))
		for i, v := range versions {
			p := purl(in.Publisher.Name, in.Product, v)
			out[i] = vex.Product{Component: vex.Component{
				ID:          p,
				Identifiers: map[vex.IdentifierType]string{vex.PURL: p},
			}}
		}
		return out
	}
	vuln := vex.Vulnerability{Name: vex.VulnerabilityID(in.vulnName()), Description: in.Title}
	if in.CVE != "" {
		vuln.Aliases = []vex.VulnerabilityID{vex.VulnerabilityID(in.TrackingID)}
	}
	doc := vex.New()
	doc.ID = strings.TrimSuffix(in.Publisher.Namespace, "/") + "/advisories/" + FileName(FormatOpenVEX, in.TrackingID)
	doc.Author = in.Publisher.Name
	doc.AuthorRole = "vendor"
	doc.Timestamp = &now
	doc.Version = 1
	doc.Tooling = "rampart"
	doc.Statements = []vex.Statement{
		{
			Vulnerability:   vuln,
			Products:        products(in.Affected),
			Status:          vex.StatusAffected,
			ActionStatement: "Update " + in.Product + " to " + strings.Join(in.Fixed, " or ") + " or later.",
			Timestamp:       &now,
		},
		{
			Vulnerability: vuln,
			Products:      products(in.Fixed),
			Status:        vex.StatusFixed,
			StatusNotes:   "Fixed in " + strings.Join(in.Fixed, ", ") + ".",
			Timestamp:     &now,
		},
	}
	for i := range doc.Statements {
		if err := doc.Statements[i].Validate(); err != nil {
			return nil, fmt.Errorf("advisory.OpenVEX: statement %d: %w", i, err)
		}
	}
	b, err := json.MarshalIndent(&doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("advisory.OpenVEX: %w", err)
	}
	return b, nil
}
