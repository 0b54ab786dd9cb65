package failure

import (
	"github.com/rampartsec/rampart/internal/deviceapi"

	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"path"
	"strconv"
	"strings"
)

// SignatureFrames is how many normalised top frames enter a signature.
const SignatureFrames = 5

// signatureDomain separates Rampart's crash signatures from any other hash.
const signatureDomain = "rampart crash signature v1"

// Fault is a report reduced to what identifies its bug.
type Fault struct {
	Program   string   `json:"program"`           // base name of the executable
	Component string   `json:"component"`         // image component
	FaultType string   `json:"fault_type"`        // as given, or derived
	Frames    []string `json:"frames"`            // normalised top frames, at most SignatureFrames
	Message   string   `json:"message,omitempty"` // a Go panic's first line, verbatim
}

// Analyze derives the fault of a report: program base name, component,
// fault type (given, or "go panic: <normalised message>", the signal name,
// or "exit <code>") and the top normalised frames (given, or parsed from the
// Go panic). A Go panic that does not parse keeps the report's own frames.
func Analyze(r deviceapi.CrashReport) Fault {
	f := Fault{Program: path.Base(strings.TrimSpace(r.Program)), Component: strings.TrimSpace(r.Component), FaultType: strings.TrimSpace(r.FaultType)}
	frames := r.Frames
	if r.GoPanic != "" {
		if p, err := ParseGoPanic(r.GoPanic); err == nil {
			f.Message = p.Message
			if len(frames) == 0 {
				frames = p.Frames
			}
			if f.FaultType == "" {
				kind := "go panic"
				if p.Fatal {
					kind = "go fatal error"
				}
				f.FaultType = kind + ": " + NormalizeMessage(p.Message)
			}
		}
	}
	if f.FaultType == "" {
		switch {
		case r.Signal > 0:
			f.FaultType = deviceapi.SignalName(r.Signal)
		case r.ExitCode != nil:
			f.FaultType = "exit " + strconv.Itoa(*r.ExitCode)
		case r.GoPanic != "":
			f.FaultType = "go panic"
		}
	}
	f.Frames = NormalizeFrames(frames)
	if len(f.Frames) > SignatureFrames {
		f.Frames = f.Frames[:SignatureFrames]
	}
	return f
}

// Signature is the hex SHA-256 over the fault's program, component, fault
// type and frames, each length-prefixed so no two faults encode alike. The
// release version is deliberately left out: the same bug keeps its
// signature across releases, which is what lets a group be counted per
// release, be marked new in the release that introduced it, and be seen
// coming back after it was resolved.
func (f Fault) Signature() string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	write := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	write(signatureDomain)
	write(f.Program)
	write(f.Component)
	write(f.FaultType)
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(f.Frames)))])
	for _, fr := range f.Frames {
		write(fr)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Signature is the signature of a report: Analyze(r).Signature().
func Signature(r deviceapi.CrashReport) string { return Analyze(r).Signature() }
