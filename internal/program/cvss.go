package program

import (
	"errors"
	"fmt"
	"strings"

	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"

	"github.com/rampartsec/rampart/internal/public"
)

// Severity is a qualitative severity, as in the CVSS rating scale.
type Severity string

// Severities, in increasing order.
const (
	SeverityNone     Severity = "none"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Severities lists every severity in increasing order.
var severities = []Severity{SeverityNone, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// Severities returns every severity in increasing order.
func Severities() []Severity { return append([]Severity(nil), severities...) }

// Valid reports whether s is a known severity.
func (s Severity) Valid() bool { return s.rank() >= 0 }

func (s Severity) rank() int {
	for i, v := range severities {
		if v == s {
			return i
		}
	}
	return -1
}

// AtLeast reports whether s is at least as severe as min.
func (s Severity) AtLeast(min Severity) bool { return s.rank() >= min.rank() }

// ParseSeverity parses a severity name, case-insensitively.
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.ToLower(s))
	if !v.Valid() {
		return "", fmt.Errorf("program.ParseSeverity: %w", public.Errorf(public.Invalid, "%q is not one of none, low, medium, high, critical", s))
	}
	return v, nil
}

// ErrInvalidVector reports a CVSS vector that does not parse.
var ErrInvalidVector = errors.New("invalid CVSS vector")

// CVSS versions.
const (
	CVSS31 = "3.1"
	CVSS40 = "4.0"
)

// Score is a parsed and scored CVSS vector.
type Score struct {
	// Version is "3.1" or "4.0".
	Version string `json:"version"`
	// Vector is the canonical form of the vector, as the library prints it.
	Vector string `json:"vector"`
	// Score is the CVSS 3.1 base score, or the CVSS 4.0 score of the
	// metrics present (see Nomenclature).
	Score float64 `json:"score"`
	// Severity is the qualitative rating of Score.
	Severity Severity `json:"severity"`
	// Nomenclature is the CVSS 4.0 nomenclature (CVSS-B, CVSS-BT, CVSS-BE,
	// CVSS-BTE); empty for 3.1.
	Nomenclature string `json:"nomenclature,omitempty"`
}

// MaxVectorLength bounds a vector string; the longest valid CVSS 4.0 vector
// with every metric is well below it.
const MaxVectorLength = 512

// ParseCVSS31 parses and scores a CVSS 3.1 vector with go-cvss.
func ParseCVSS31(vector string) (Score, error) {
	if len(vector) > MaxVectorLength {
		return Score{}, fmt.Errorf("program.ParseCVSS31: %w", public.Errorf(public.Invalid, "%w: longer than %d bytes", ErrInvalidVector, MaxVectorLength))
	}
	v, err := gocvss31.ParseVector(vector)
	if err != nil {
		return Score{}, fmt.Errorf("program.ParseCVSS31: %w", public.Errorf(public.Invalid, "%w: %w", ErrInvalidVector, err))
	}
	s := v.BaseScore()
	rating, err := gocvss31.Rating(s)
	if err != nil {
		return Score{}, fmt.Errorf("program.ParseCVSS31: %w", public.Errorf(public.Invalid, "%w: %w", ErrInvalidVector, err))
	}
	return Score{Version: CVSS31, Vector: v.Vector(), Score: s, Severity: Severity(strings.ToLower(rating))}, nil
}

// ParseCVSS40 parses and scores a CVSS 4.0 vector with go-cvss.
func ParseCVSS40(vector string) (Score, error) {
	if len(vector) > MaxVectorLength {
		return Score{}, fmt.Errorf("program.ParseCVSS40: %w", public.Errorf(public.Invalid, "%w: longer than %d bytes", ErrInvalidVector, MaxVectorLength))
	}
	v, err := gocvss40.ParseVector(vector)
	if err != nil {
		return Score{}, fmt.Errorf("program.ParseCVSS40: %w", public.Errorf(public.Invalid, "%w: %w", ErrInvalidVector, err))
	}
	s := v.Score()
	rating, err := gocvss40.Rating(s)
	if err != nil {
		return Score{}, fmt.Errorf("program.ParseCVSS40: %w", public.Errorf(public.Invalid, "%w: %w", ErrInvalidVector, err))
	}
	return Score{
		Version: CVSS40, Vector: v.Vector(), Score: s,
		Severity: Severity(strings.ToLower(rating)), Nomenclature: v.Nomenclature(),
	}, nil
}

// ParseCVSS parses a vector of either version, chosen by its prefix.
func ParseCVSS(vector string) (Score, error) {
	switch {
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		return ParseCVSS31(vector)
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		return ParseCVSS40(vector)
	default:
		return Score{}, fmt.Errorf("program.ParseCVSS: %w", public.Errorf(public.Invalid, "%w: must start with CVSS:3.1/ or CVSS:4.0/", ErrInvalidVector))
	}
}

// Scores holds the optional CVSS 3.1 and 4.0 scores of a report.
type Scores struct {
	V31 *Score `json:"cvss31,omitempty"`
	V40 *Score `json:"cvss40,omitempty"`
}

// ParseScores parses the CVSS 3.1 and 4.0 vectors of a report; an empty
// string means absent.
func ParseScores(v31, v40 string) (Scores, error) {
	var s Scores
	if v31 != "" {
		sc, err := ParseCVSS31(v31)
		if err != nil {
			return Scores{}, err
		}
		s.V31 = &sc
	}
	if v40 != "" {
		sc, err := ParseCVSS40(v40)
		if err != nil {
			return Scores{}, err
		}
		s.V40 = &sc
	}
	return s, nil
}

// Severity returns the severity the scores imply: the CVSS 4.0 rating when
// present, else the 3.1 rating, else none.
func (s Scores) Severity() Severity {
	switch {
	case s.V40 != nil:
		return s.V40.Severity
	case s.V31 != nil:
		return s.V31.Severity
	default:
		return SeverityNone
	}
}
