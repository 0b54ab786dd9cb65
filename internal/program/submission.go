package program

import (
	"errors"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/rampartsec/rampart/internal/public"
)

// Limits on researcher input.
const (
	MaxSubmissionBytes  = 256 << 10
	MaxApplicationBytes = 16 << 10
	MaxCommentBytes     = 64 << 10
	MaxTitleRunes       = 200
	MaxDescriptionBytes = 128 << 10
	MaxListItems        = 32
	MaxTextRunes        = 2000
	MaxAttachmentName   = 255
)

// Errors for researcher input.
var (
	ErrInvalidInput       = errors.New("invalid input")
	ErrProgramClosed      = errors.New("the program is not accepting reports")
	ErrAttachmentTooLarge = errors.New("attachment is larger than the program allows")
)

// invalid refuses a researcher's input: the error says "invalid input: " and the detail, wraps
// ErrInvalidInput, and its public sentence is the detail.
func invalid(format string, args ...any) error {
	detail := fmt.Sprintf(format, args...)
	return public.Mark(fmt.Errorf("%w: %s", ErrInvalidInput, detail), public.Invalid, "%s", detail)
}

// invalidAll is invalid for several problems, each a public error: the sentence gives each
// problem's own sentence on its own line, and the error wraps every problem.
func invalidAll(errs []error) error {
	lines := make([]string, len(errs))
	for i, err := range errs {
		var ok bool
		if lines[i], ok = public.Message(err); !ok {
			lines[i] = ErrInvalidInput.Error()
		}
	}
	return public.Mark(fmt.Errorf("%w: %w", ErrInvalidInput, errors.Join(errs...)), public.Invalid, "%s", strings.Join(lines, "\n"))
}

// Submission is a report as a researcher submits it.
type Submission struct {
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Scenario    string   `json:"scenario"`
	Product     string   `json:"product"`
	Components  []string `json:"components"`
	// Releases are the release versions the researcher found affected.
	Releases []string `json:"releases,omitempty"`
	CVSS31   string   `json:"cvss31,omitempty"`
	CVSS40   string   `json:"cvss40,omitempty"`
}

// DecodeSubmission reads one submission from r, strictly: unknown fields,
// trailing data and bodies over MaxSubmissionBytes are rejected.
func DecodeSubmission(r io.Reader) (Submission, error) {
	var s Submission
	if err := decodeLimited(r, MaxSubmissionBytes, &s); err != nil {
		return Submission{}, fmt.Errorf("program.DecodeSubmission: %w", invalidAll([]error{err}))
	}
	return s, nil
}

func decodeLimited(r io.Reader, limit int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return public.Errorf(public.Invalid, "read: %w", err) // the client's own transport
	}
	if int64(len(data)) > limit {
		return public.Errorf(public.Invalid, "body is larger than %d bytes", limit)
	}
	if !utf8.Valid(data) {
		return public.Errorf(public.Invalid, "body is not valid UTF-8")
	}
	return DecodeJSONStrict(strings.NewReader(string(data)), v)
}

var versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$`)

// ValidVersion reports whether s looks like a release version.
func ValidVersion(s string) bool { return versionRE.MatchString(s) }

// Validate checks a submission against the program at time now and
// returns its parsed CVSS scores.
func (s Submission) Validate(p *Program, now time.Time) (Scores, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, public.Errorf(public.Invalid, format, args...)) }
	if !p.Open(now) {
		return Scores{}, fmt.Errorf("program.Submission.Validate: %w", public.Errorf(public.Conflict, "%w", ErrProgramClosed))
	}
	if err := checkText("title", s.Title, MaxTitleRunes, true); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(s.Description) == "" {
		bad("description: required")
	} else if len(s.Description) > MaxDescriptionBytes {
		bad("description: longer than %d bytes", MaxDescriptionBytes)
	}
	if _, ok := p.Scenario(s.Scenario); !ok {
		errs = append(errs, public.Errorf(public.Invalid, "scenario: %w: %q", ErrUnknownScenario, s.Scenario))
	}
	if !p.HasProduct(s.Product) {
		errs = append(errs, public.Errorf(public.Invalid, "product: %w: %q", ErrOutOfScope, s.Product))
	} else {
		if len(s.Components) == 0 {
			bad("components: at least one is required")
		}
		if len(s.Components) > MaxListItems {
			bad("components: more than %d", MaxListItems)
		}
		seen := map[string]bool{}
		for _, c := range s.Components {
			if !p.InScope(s.Product, c) {
				errs = append(errs, public.Errorf(public.Invalid, "components: %w: %q is not a component of %q", ErrOutOfScope, c, s.Product))
			}
			if seen[c] {
				bad("components: %q is listed twice", c)
			}
			seen[c] = true
		}
	}
	if len(s.Releases) > MaxListItems {
		bad("releases: more than %d", MaxListItems)
	}
	for _, r := range s.Releases {
		if !ValidVersion(r) {
			bad("releases: %q is not a release version", r)
		}
	}
	scores, err := ParseScores(s.CVSS31, s.CVSS40)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Scores{}, fmt.Errorf("program.Submission.Validate: %w", invalidAll(errs))
	}
	return scores, nil
}

// checkText checks a one-line text field: printable, at most max runes.
func checkText(field, s string, max int, required bool) error {
	if strings.TrimSpace(s) == "" {
		if required {
			return public.Errorf(public.Invalid, "%s: required", field)
		}
		return nil
	}
	if utf8.RuneCountInString(s) > max {
		return public.Errorf(public.Invalid, "%s: longer than %d characters", field, max)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return public.Errorf(public.Invalid, "%s: contains a control character", field)
		}
	}
	return nil
}

// Application is a researcher's application to a program.
type Application struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	// Country is an ISO 3166-1 alpha-2 code such as DE.
	Country     string `json:"country"`
	Affiliation string `json:"affiliation,omitempty"`
	Experience  string `json:"experience"`
}

// DecodeApplication reads one application from r, strictly.
func DecodeApplication(r io.Reader) (Application, error) {
	var a Application
	if err := decodeLimited(r, MaxApplicationBytes, &a); err != nil {
		return Application{}, fmt.Errorf("program.DecodeApplication: %w", invalidAll([]error{err}))
	}
	return a, nil
}

// Validate checks an application and normalises its country code to upper case.
func (a *Application) Validate() error {
	var errs []error
	errs = append(errs, contactErrors(a.Name, a.Email)...)
	if c, err := ParseCountry(a.Country); err != nil {
		errs = append(errs, err)
	} else {
		a.Country = c
	}
	if err := checkText("affiliation", a.Affiliation, MaxTitleRunes, false); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(a.Experience) == "" {
		errs = append(errs, public.Errorf(public.Invalid, "experience: required"))
	} else if utf8.RuneCountInString(a.Experience) > MaxTextRunes {
		errs = append(errs, public.Errorf(public.Invalid, "experience: longer than %d characters", MaxTextRunes))
	}
	if len(errs) > 0 {
		return fmt.Errorf("program.Application.Validate: %w", invalidAll(errs))
	}
	return nil
}

// ValidateContact checks a researcher's name and e-mail address, as an
// invitation gives them.
func ValidateContact(name, email string) error {
	if errs := contactErrors(name, email); len(errs) > 0 {
		return fmt.Errorf("program.ValidateContact: %w", invalidAll(errs))
	}
	return nil
}

func contactErrors(name, email string) []error {
	var errs []error
	if err := checkText("name", name, MaxTitleRunes, true); err != nil {
		errs = append(errs, err)
	}
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email || len(email) > 254 {
		errs = append(errs, public.Errorf(public.Invalid, "email: %q is not a plain e-mail address", email))
	}
	return errs
}

// ParseCountry checks an ISO 3166-1 alpha-2 country code and returns it in
// upper case.
func ParseCountry(s string) (string, error) {
	if len(s) != 2 {
		return "", public.Errorf(public.Invalid, "country: %q is not an ISO 3166-1 alpha-2 code such as DE", s)
	}
	r, err := language.ParseRegion(s)
	if err != nil || !r.IsCountry() || r.String() != strings.ToUpper(s) {
		return "", public.Errorf(public.Invalid, "country: %q is not an ISO 3166-1 alpha-2 country code", s)
	}
	return r.String(), nil
}

// CheckAttachment checks an attachment's name and size against the program.
func (p *Program) CheckAttachment(name string, size int64) error {
	if size > p.MaxAttachmentBytes {
		return fmt.Errorf("program.CheckAttachment: %w", public.Errorf(public.TooLarge, "%w: %d bytes, the limit is %d", ErrAttachmentTooLarge, size, p.MaxAttachmentBytes))
	}
	if size <= 0 {
		return fmt.Errorf("program.CheckAttachment: %w", invalid("attachment is empty"))
	}
	if err := ValidAttachmentName(name); err != nil {
		return fmt.Errorf("program.CheckAttachment: %w", err)
	}
	return nil
}

// ValidAttachmentName checks an attachment file name: a plain base name,
// printable, without path separators.
func ValidAttachmentName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > MaxAttachmentName ||
		strings.ContainsAny(name, `/\`) || !utf8.ValidString(name) {
		return invalid("attachment name %q must be a plain file name of at most %d bytes", name, MaxAttachmentName)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return invalid("attachment name contains a control character")
		}
	}
	return nil
}

// ValidateComment checks a comment body.
func ValidateComment(body string) error {
	if strings.TrimSpace(body) == "" {
		return fmt.Errorf("program.ValidateComment: %w", invalid("comment is empty"))
	}
	if len(body) > MaxCommentBytes || !utf8.ValidString(body) {
		return fmt.Errorf("program.ValidateComment: %w", invalid("comment must be UTF-8 of at most %d bytes", MaxCommentBytes))
	}
	return nil
}
