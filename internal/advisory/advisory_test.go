package advisory

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gocsaf/csaf/v3/csaf"
	csafutil "github.com/gocsaf/csaf/v3/util"
	"github.com/google/go-cmp/cmp"
	"github.com/openvex/go-vex/pkg/vex"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/rampartsec/rampart/internal/program"
)

var (
	submitted = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	fixedAt   = time.Date(2026, 7, 28, 9, 0, 0, 0, time.UTC)
	issued    = time.Date(2026, 8, 2, 10, 30, 0, 0, time.UTC)
)

func input(t testing.TB) Input {
	t.Helper()
	scores, err := program.ParseScores("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
	if err != nil {
		t.Fatal(err)
	}
	return Input{
		Publisher:    Publisher{Name: "Example Devices", Namespace: "https://devices.example"},
		TrackingID:   "RAMPART-EDGE-CHALLENGE-42",
		ReportID:     42,
		Program:      "edge-challenge",
		Title:        "Heap overflow in the update agent's manifest parser",
		Description:  "A crafted manifest overflows a heap buffer in the update agent, leading to code execution as root.",
		Scores:       scores,
		Product:      "edge-gateway",
		Affected:     []string{"26.06.0", "26.07.1"},
		Fixed:        []string{"26.07.2"},
		Researcher:   "Ada Lovelace",
		DiscoveredAt: submitted,
		FixedAt:      fixedAt,
		Now:          issued,
	}
}

func openvexSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/openvex_json_schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const url = "https://github.com/openvex/spec/openvex_json_schema_0.2.0.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decodeAny(t testing.TB, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("exported document is not JSON: %v", err)
	}
	return v
}

func TestCSAFValidates(t *testing.T) {
	tests := map[string]func(*Input){
		"full":                  func(*Input) {},
		"with a CVE":            func(in *Input) { in.CVE = "CVE-2026-12345" },
		"no scores, no credit":  func(in *Input) { in.Scores = program.Scores{}; in.Researcher = "" },
		"several fixed":         func(in *Input) { in.Fixed = []string{"26.07.2", "26.08.0"} },
		"fix date not recorded": func(in *Input) { in.FixedAt = time.Time{} },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			in := input(t)
			edit(&in)
			b, err := CSAF(in)
			if err != nil {
				t.Fatalf("CSAF: %v", err)
			}
			// Against the OASIS CSAF 2.0 schema (and the FIRST CVSS schemas).
			problems, err := csaf.ValidateCSAF(decodeAny(t, b))
			if err != nil {
				t.Fatalf("ValidateCSAF: %v", err)
			}
			if len(problems) > 0 {
				t.Fatalf("CSAF schema violations:\n%s\n%s", strings.Join(problems, "\n"), b)
			}
			// And through gocsaf's own model and its checks.
			var adv csaf.Advisory
			if err := json.Unmarshal(b, &adv); err != nil {
				t.Fatalf("gocsaf cannot read it: %v", err)
			}
			if err := adv.Validate(); err != nil {
				t.Fatalf("gocsaf Validate: %v", err)
			}
		})
	}
}

func TestCSAFContent(t *testing.T) {
	b, err := CSAF(input(t))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Document struct {
			Category string `json:"category"`
			Tracking struct {
				ID                 string `json:"id"`
				InitialReleaseDate string `json:"initial_release_date"`
			} `json:"tracking"`
		} `json:"document"`
		ProductTree struct {
			Branches []struct {
				Name     string `json:"name"`
				Branches []struct {
					Name     string `json:"name"`
					Branches []struct {
						Category string `json:"category"`
						Name     string `json:"name"`
						Product  struct {
							ProductID string `json:"product_id"`
						} `json:"product"`
					} `json:"branches"`
				} `json:"branches"`
			} `json:"branches"`
		} `json:"product_tree"`
		Vulnerabilities []struct {
			ProductStatus struct {
				Fixed         []string `json:"fixed"`
				KnownAffected []string `json:"known_affected"`
			} `json:"product_status"`
			Scores []struct {
				CVSS struct {
					BaseScore    float64 `json:"baseScore"`
					BaseSeverity string  `json:"baseSeverity"`
				} `json:"cvss_v3"`
			} `json:"scores"`
			Acknowledgments []struct {
				Names []string `json:"names"`
			} `json:"acknowledgments"`
			Notes []struct {
				Title string `json:"title"`
				Text  string `json:"text"`
			} `json:"notes"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Document.Category != "csaf_security_advisory" || doc.Document.Tracking.ID != "RAMPART-EDGE-CHALLENGE-42" ||
		doc.Document.Tracking.InitialReleaseDate != "2026-08-02T10:30:00Z" {
		t.Errorf("document = %+v", doc.Document)
	}
	var versions []string
	for _, v := range doc.ProductTree.Branches[0].Branches[0].Branches {
		versions = append(versions, v.Category+":"+v.Name+":"+v.Product.ProductID)
	}
	want := []string{
		"product_version:26.06.0:edge-gateway-26.06.0",
		"product_version:26.07.1:edge-gateway-26.07.1",
		"product_version:26.07.2:edge-gateway-26.07.2",
	}
	if diff := cmp.Diff(versions, want); diff != "" {
		t.Errorf("product versions (-got +want):\n%s", diff)
	}
	v := doc.Vulnerabilities[0]
	if diff := cmp.Diff(v.ProductStatus.KnownAffected, []string{"edge-gateway-26.06.0", "edge-gateway-26.07.1"}); diff != "" {
		t.Errorf("known_affected (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(v.ProductStatus.Fixed, []string{"edge-gateway-26.07.2"}); diff != "" {
		t.Errorf("fixed (-got +want):\n%s", diff)
	}
	if v.Scores[0].CVSS.BaseScore != 9.8 || v.Scores[0].CVSS.BaseSeverity != "CRITICAL" {
		t.Errorf("score = %+v", v.Scores[0])
	}
	if len(v.Acknowledgments) != 1 || v.Acknowledgments[0].Names[0] != "Ada Lovelace" {
		t.Errorf("acknowledgments = %+v", v.Acknowledgments)
	}
	if len(v.Notes) != 2 || !strings.Contains(v.Notes[1].Text, "CVSS:4.0/") || !strings.Contains(v.Notes[1].Text, "9.3") {
		t.Errorf("the CVSS 4.0 note is missing: %+v", v.Notes)
	}
}

func TestOpenVEXValidates(t *testing.T) {
	schema := openvexSchema(t)
	tests := map[string]func(*Input){
		"full":                                 func(*Input) {},
		"with a CVE":                           func(in *Input) { in.CVE = "CVE-2026-12345" },
		"vendor name with spaces and capitals": func(in *Input) { in.Publisher.Name = "Example Devices GmbH & Co" },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			in := input(t)
			edit(&in)
			b, err := OpenVEX(in)
			if err != nil {
				t.Fatalf("OpenVEX: %v", err)
			}
			if err := schema.Validate(decodeAny(t, b)); err != nil {
				t.Fatalf("OpenVEX schema violation: %v\n%s", err, b)
			}
			// go-vex reads it back and finds the right status per release.
			var doc vex.VEX
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatalf("go-vex cannot read it: %v", err)
			}
			name := in.TrackingID
			if in.CVE != "" {
				name = in.CVE
			}
			for _, tc := range []struct {
				version string
				want    vex.Status
			}{{"26.06.0", vex.StatusAffected}, {"26.07.1", vex.StatusAffected}, {"26.07.2", vex.StatusFixed}} {
				p := purl(in.Publisher.Name, in.Product, tc.version)
				st := doc.EffectiveStatement(p, name)
				if st == nil {
					t.Fatalf("no statement for %s", p)
				}
				if st.Status != tc.want {
					t.Errorf("%s: status %s, want %s", tc.version, st.Status, tc.want)
				}
			}
		})
	}
}

func TestSchemasRejectBrokenDocuments(t *testing.T) {
	// The validators are not vacuous: a document missing a required field fails.
	b, err := OpenVEX(input(t))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "author")
	broken, _ := json.Marshal(m)
	if err := openvexSchema(t).Validate(decodeAny(t, broken)); err == nil {
		t.Error("the OpenVEX schema accepted a document without an author")
	}

	b, err = CSAF(input(t))
	if err != nil {
		t.Fatal(err)
	}
	m = nil
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["document"].(map[string]any)["category"] = ""
	broken, _ = json.Marshal(m)
	problems, err := csaf.ValidateCSAF(decodeAny(t, broken))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) == 0 {
		t.Error("the CSAF schema accepted an empty category")
	}
}

func TestInputRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Input)
		want string
	}{
		{"not fixed", func(in *Input) { in.Fixed = nil }, "no fix release"},
		{"no affected", func(in *Input) { in.Affected = nil }, "affected"},
		{"both affected and fixed", func(in *Input) { in.Fixed = []string{"26.07.1"} }, "both as affected and as fixed"},
		{"bad version", func(in *Input) { in.Affected = []string{"a b"} }, "release version"},
		{"bad tracking id", func(in *Input) { in.TrackingID = " x" }, "tracking id"},
		{"bad CVE", func(in *Input) { in.CVE = "CVE-26-1" }, "CVE identifier"},
		{"http namespace", func(in *Input) { in.Publisher.Namespace = "http://devices.example" }, "https URL"},
		{"no publisher", func(in *Input) { in.Publisher.Name = "" }, "publisher name"},
		{"no title", func(in *Input) { in.Title = "" }, "title"},
		{"no dates", func(in *Input) { in.Now = time.Time{} }, "dates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t)
			tt.edit(&in)
			for _, format := range []string{FormatCSAF, FormatOpenVEX} {
				b, err := Export(format, in)
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Export(%s) = %d bytes, %v; want ErrInvalid mentioning %q", format, len(b), err, tt.want)
				}
			}
		})
	}
	if _, err := Export("spdx", input(t)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Export(spdx) = %v", err)
	}
}

func TestExportIsDeterministic(t *testing.T) {
	for _, format := range []string{FormatCSAF, FormatOpenVEX} {
		a, err := Export(format, input(t))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Export(format, input(t))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two exports of the same input differ", format)
		}
	}
}

func BenchmarkCSAF(b *testing.B) {
	in := input(b)
	for b.Loop() {
		if _, err := CSAF(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenVEX(b *testing.B) {
	in := input(b)
	for b.Loop() {
		if _, err := OpenVEX(in); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCeiling re-encodes an already built document of the same shape with encoding/json:
// the floor under any exporter, to read BenchmarkCSAF and BenchmarkOpenVEX as ratios.
func benchCeiling(b *testing.B, export func(Input) ([]byte, error)) {
	doc, err := export(input(b))
	if err != nil {
		b.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := json.MarshalIndent(v, "", "  "); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCSAFCeiling(b *testing.B)    { benchCeiling(b, CSAF) }
func BenchmarkOpenVEXCeiling(b *testing.B) { benchCeiling(b, OpenVEX) }

// TestFileName checks the published names against the CSAF 2.0 rule (section 5.1) as gocsaf's
// checker applies it, for tracking IDs that need every part of the rule.
func TestFileName(t *testing.T) {
	for _, tc := range []struct{ id, csaf, vex string }{
		{"RAMPART-EDGE-CHALLENGE-42", "rampart-edge-challenge-42.json", "rampart-edge-challenge-42.openvex.json"},
		{"RAMPART-EDGE.CHALLENGE_7", "rampart-edge_challenge_7.json", "rampart-edge_challenge_7.openvex.json"},
		{"Acme+1..2", "acme+1_2.json", "acme+1_2.openvex.json"},
	} {
		if got := FileName(FormatCSAF, tc.id); got != tc.csaf || !csafutil.ConformingFileName(got) {
			t.Errorf("FileName(csaf, %q) = %q, want %q (conforming)", tc.id, got, tc.csaf)
		}
		if got := FileName(FormatOpenVEX, tc.id); got != tc.vex {
			t.Errorf("FileName(openvex, %q) = %q, want %q", tc.id, got, tc.vex)
		}
	}
	// The name read back from each exported document is the one its tracking ID gives, and
	// gocsaf finds that the CSAF name matches the document's tracking ID.
	in := input(t)
	for _, format := range []string{FormatCSAF, FormatOpenVEX} {
		b, err := Export(format, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DocumentFileName(b)
		if want := FileName(format, in.TrackingID); err != nil || got != want {
			t.Errorf("DocumentFileName(%s) = %q, %v; want %q", format, got, err, want)
		}
		if format == FormatCSAF {
			if err := csafutil.IDMatchesFilename(csafutil.NewPathEval(), decodeAny(t, b), got); err != nil {
				t.Errorf("gocsaf: %v", err)
			}
		}
	}
	if _, err := DocumentFileName([]byte(`{"x":1}`)); err == nil {
		t.Error("DocumentFileName of a document with no ID: no error")
	}
}
