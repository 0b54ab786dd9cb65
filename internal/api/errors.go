package api

import (
	"errors"
	"fmt"
	"net/http"

	pub "github.com/rampartsec/rampart/internal/public" // the package var public is a route's access
)

// The error codes a client may see in the envelope, each with one status. They are the only
// codes the API emits: doc/api.md's table lists every one, and TestErrorCodesDocumented holds
// the table, these constants and codeStatus together.
const (
	CodeBadRequest           = "bad_request"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeAttestationRefused   = "attestation_refused"
	CodeEKUntrusted          = "ek_untrusted"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeConflict             = "conflict"
	CodeWrongState           = "wrong_state"
	CodeNoKeys               = "no_keys"
	CodeTooLarge             = "too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeRateLimited          = "rate_limited"
	CodeInternal             = "internal"
	CodeUnavailable          = "unavailable"
	CodeBusy                 = "busy"
)

// codeStatus is the status each code is sent with.
var codeStatus = map[string]int{
	CodeBadRequest:           http.StatusBadRequest,
	CodeUnauthorized:         http.StatusUnauthorized,
	CodeForbidden:            http.StatusForbidden,
	CodeAttestationRefused:   http.StatusForbidden,
	CodeEKUntrusted:          http.StatusForbidden,
	CodeNotFound:             http.StatusNotFound,
	CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	CodeConflict:             http.StatusConflict,
	CodeWrongState:           http.StatusConflict,
	CodeNoKeys:               http.StatusConflict,
	CodeTooLarge:             http.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	CodeRateLimited:          http.StatusTooManyRequests,
	CodeInternal:             http.StatusInternalServerError,
	CodeUnavailable:          http.StatusServiceUnavailable,
	CodeBusy:                 http.StatusServiceUnavailable,
}

// kindCode is the one mapping from a domain error's public.Kind to the code (and so the status)
// it is answered with. A handler may answer with a narrower code of the same status (coded).
var kindCode = map[pub.Kind]string{
	pub.Internal:     CodeInternal,
	pub.Invalid:      CodeBadRequest,
	pub.NotFound:     CodeNotFound,
	pub.Conflict:     CodeConflict,
	pub.Forbidden:    CodeForbidden,
	pub.Unauthorized: CodeUnauthorized,
	pub.TooLarge:     CodeTooLarge,
	pub.Unavailable:  CodeUnavailable,
}

// Error is the one edge type for failures: the status, a stable code, a message that is safe to
// show the client, and the internal cause, which is only logged.
type Error struct {
	Status  int
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func newError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, CodeBadRequest, format, args...)
}

func notFound(format string, args ...any) *Error {
	return newError(http.StatusNotFound, CodeNotFound, format, args...)
}

func conflict(format string, args ...any) *Error {
	return newError(http.StatusConflict, CodeConflict, format, args...)
}

func forbidden(format string, args ...any) *Error {
	return newError(http.StatusForbidden, CodeForbidden, format, args...)
}

func unauthorized(format string, args ...any) *Error {
	return newError(http.StatusUnauthorized, CodeUnauthorized, format, args...)
}

// internal hides err from the client; it is logged with the request.
func internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}

// fromPublic answers err with the public sentence its domain package gave it and the code its
// kind maps to; an error without a public sentence is internal.
func fromPublic(err error) *Error {
	msg, ok := pub.Message(err)
	if !ok {
		return internal(err)
	}
	code := kindCode[pub.KindOf(err)]
	return &Error{Status: codeStatus[code], Code: code, Message: msg, Err: err}
}

// coded answers err like fromPublic but with code, a narrower code of the same status (a
// conflict that is a wrong_state); an error without a public sentence is still internal.
func coded(err error, code string) *Error {
	e := fromPublic(err)
	if e.Code != CodeInternal {
		e.Code, e.Status = code, codeStatus[code]
	}
	return e
}

// asError turns any handler error into an *Error: an *Error as it is, a domain error with a
// public sentence by its kind, and anything else as a 500 whose cause is only logged.
func asError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return fromPublic(err)
}

// replayed is an answer the API already gave in process (API.Do), its code one of the constants
// the route sent.
func replayed(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}
