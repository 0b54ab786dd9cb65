// Package failure owns crash reports on the server side: the parsing of Go
// panic traces, frame normalisation, the signature that groups reports, and
// the rules that mark a group new in a release or regressed after it was
// resolved. The report a device uploads, its limits and its strict decoder
// are part of the device API (internal/deviceapi).
//
// It is pure: no storage and no HTTP. The server's device API and storage
// import it; the device agent does not.
package failure

import (
	"fmt"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

// malformed carries its whole text as the public sentence: it describes only the device's own
// input.
func malformed(format string, args ...any) error {
	return public.Errorf(public.Invalid, "%w: %s", deviceapi.ErrCrashMalformed, fmt.Sprintf(format, args...))
}
