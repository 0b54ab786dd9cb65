package program

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var july = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func goodSubmission() Submission {
	return Submission{
		Title:       "Heap overflow in the update agent's manifest parser",
		Description: "A crafted manifest overflows a heap buffer; proof of concept attached.",
		Scenario:    "remote-code-execution",
		Product:     "edge-gateway",
		Components:  []string{"update-agent"},
		Releases:    []string{"26.07.1"},
		CVSS31:      "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		CVSS40:      "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
	}
}

func TestDecodeSubmission(t *testing.T) {
	want := goodSubmission()
	body, _ := json.Marshal(want)
	got, err := DecodeSubmission(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("DecodeSubmission (-got +want):\n%s", diff)
	}
	rejects := map[string]string{
		"unknown field":  `{"title":"x","severity":"critical"}`,
		"trailing data":  `{"title":"x"}{"title":"y"}`,
		"not an object":  `["title"]`,
		"wrong type":     `{"components":"kernel"}`,
		"invalid utf8":   "{\"title\":\"\xff\"}",
		"too large":      `{"description":"` + strings.Repeat("a", MaxSubmissionBytes) + `"}`,
		"empty body":     ``,
		"truncated json": `{"title":`,
	}
	for name, body := range rejects {
		t.Run(name, func(t *testing.T) {
			if s, err := DecodeSubmission(strings.NewReader(body)); !errors.Is(err, ErrInvalidInput) {
				t.Errorf("DecodeSubmission = %+v, %v; want ErrInvalidInput", s, err)
			}
		})
	}
}

func TestSubmissionValidate(t *testing.T) {
	p := loadExample(t)
	scores, err := goodSubmission().Validate(p, july)
	if err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	if scores.V31 == nil || scores.V31.Score != 9.8 || scores.V40 == nil || scores.V40.Score != 9.3 {
		t.Errorf("scores = %+v", scores)
	}
	tests := []struct {
		name   string
		edit   func(*Submission)
		now    time.Time
		target error
		want   string
	}{
		{"scenario outside the program", func(s *Submission) { s.Scenario = "bribe-the-admin" }, july, ErrUnknownScenario, "scenario"},
		{"product outside scope", func(s *Submission) { s.Product = "toaster" }, july, ErrOutOfScope, "product"},
		{"component outside scope", func(s *Submission) { s.Components = []string{"modem"} }, july, ErrOutOfScope, `"modem"`},
		{"no component", func(s *Submission) { s.Components = nil }, july, ErrInvalidInput, "at least one"},
		{"duplicate component", func(s *Submission) { s.Components = []string{"kernel", "kernel"} }, july, ErrInvalidInput, "twice"},
		{"malformed 3.1 vector", func(s *Submission) { s.CVSS31 = "CVSS:3.1/AV:N" }, july, ErrInvalidVector, "CVSS"},
		{"malformed 4.0 vector", func(s *Submission) { s.CVSS40 = "CVSS:4.0/AV:Q/AC:L" }, july, ErrInvalidVector, "CVSS"},
		{"3.1 vector in the 4.0 slot", func(s *Submission) { s.CVSS40 = s.CVSS31 }, july, ErrInvalidVector, "CVSS"},
		{"no title", func(s *Submission) { s.Title = " " }, july, ErrInvalidInput, "title: required"},
		{"control character in title", func(s *Submission) { s.Title = "a\x1bb" }, july, ErrInvalidInput, "control character"},
		{"long title", func(s *Submission) { s.Title = strings.Repeat("é", MaxTitleRunes+1) }, july, ErrInvalidInput, "longer than"},
		{"no description", func(s *Submission) { s.Description = "" }, july, ErrInvalidInput, "description: required"},
		{"bad release", func(s *Submission) { s.Releases = []string{"../etc"} }, july, ErrInvalidInput, "release version"},
		{"before the program starts", func(*Submission) {}, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), ErrProgramClosed, "not accepting"},
		{"after the program ends", func(*Submission) {}, time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC), ErrProgramClosed, "not accepting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := goodSubmission()
			tt.edit(&s)
			_, err := s.Validate(p, tt.now)
			if !errors.Is(err, tt.target) {
				t.Fatalf("Validate = %v, want %v", err, tt.target)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestApplication(t *testing.T) {
	good := Application{Name: "Ada", Email: "ada@example.org", Country: "de", Affiliation: "Independent", Experience: "10 years of embedded exploitation"}
	a := good
	if err := a.Validate(); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	if a.Country != "DE" {
		t.Errorf("country not normalised: %q", a.Country)
	}
	tests := []struct {
		name string
		edit func(*Application)
		want string
	}{
		{"unknown country", func(a *Application) { a.Country = "XX" }, "country"},
		{"three letters", func(a *Application) { a.Country = "DEU" }, "alpha-2"},
		{"region not a country", func(a *Application) { a.Country = "EU" }, "country"},
		{"no email", func(a *Application) { a.Email = "" }, "email"},
		{"display-name email", func(a *Application) { a.Email = "Ada <ada@example.org>" }, "email"},
		{"no experience", func(a *Application) { a.Experience = "" }, "experience: required"},
		{"no name", func(a *Application) { a.Name = "" }, "name: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := good
			tt.edit(&a)
			err := a.Validate()
			if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want ErrInvalidInput mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := DecodeApplication(strings.NewReader(`{"name":"x","admin":true}`)); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("DecodeApplication with an unknown field: %v", err)
	}
}

func TestCheckAttachment(t *testing.T) {
	p := loadExample(t)
	tests := []struct {
		name   string
		file   string
		size   int64
		target error
	}{
		{"fits", "poc.py", 1024, nil},
		{"at the limit", "dump.bin", p.MaxAttachmentBytes, nil},
		{"over the limit", "dump.bin", p.MaxAttachmentBytes + 1, ErrAttachmentTooLarge},
		{"empty", "empty.txt", 0, ErrInvalidInput},
		{"path", "../../etc/passwd", 10, ErrInvalidInput},
		{"backslash", `c:\poc.py`, 10, ErrInvalidInput},
		{"dot dot", "..", 10, ErrInvalidInput},
		{"control", "a\nb", 10, ErrInvalidInput},
		{"long name", strings.Repeat("a", MaxAttachmentName+1), 10, ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := p.CheckAttachment(tt.file, tt.size); !errors.Is(err, tt.target) {
				t.Errorf("CheckAttachment = %v, want %v", err, tt.target)
			}
		})
	}
}

func TestValidateComment(t *testing.T) {
	if err := ValidateComment("Can you share the crash log?"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "  \n", strings.Repeat("x", MaxCommentBytes+1), "\xff"} {
		if err := ValidateComment(bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ValidateComment(%.10q) = %v", bad, err)
		}
	}
}

func fuzzSeeds(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzDecodeSubmission(f *testing.F) {
	fuzzSeeds(f, "submissions")
	p := loadExample(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSubmission(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error %v is not ErrInvalidInput", err)
			}
			return
		}
		scores, err := s.Validate(p, july)
		if err != nil {
			return
		}
		// An accepted submission is in scope and its vectors scored.
		if _, ok := p.Scenario(s.Scenario); !ok {
			t.Fatalf("accepted scenario %q", s.Scenario)
		}
		for _, c := range s.Components {
			if !p.InScope(s.Product, c) {
				t.Fatalf("accepted component %q", c)
			}
		}
		if (s.CVSS31 != "") != (scores.V31 != nil) || (s.CVSS40 != "") != (scores.V40 != nil) {
			t.Fatalf("scores %+v do not match vectors %q %q", scores, s.CVSS31, s.CVSS40)
		}
	})
}

func FuzzDecodeApplication(f *testing.F) {
	fuzzSeeds(f, "applications")
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeApplication(bytes.NewReader(data))
		if err != nil {
			return
		}
		if err := a.Validate(); err != nil {
			return
		}
		if len(a.Country) != 2 || strings.ToUpper(a.Country) != a.Country {
			t.Fatalf("accepted country %q", a.Country)
		}
	})
}
