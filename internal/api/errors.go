package api

import (
	"errors"
	"fmt"
	"net/http"
)

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
	return newError(http.StatusBadRequest, "bad_request", format, args...)
}

func notFound(format string, args ...any) *Error {
	return newError(http.StatusNotFound, "not_found", format, args...)
}

func conflict(format string, args ...any) *Error {
	return newError(http.StatusConflict, "conflict", format, args...)
}

func forbidden(format string, args ...any) *Error {
	return newError(http.StatusForbidden, "forbidden", format, args...)
}

func unauthorized(format string, args ...any) *Error {
	return newError(http.StatusUnauthorized, "unauthorized", format, args...)
}

// internal hides err from the client; it is logged with the request.
func internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error", Err: err}
}

// asError turns any handler error into an *Error; unknown errors become 500s.
func asError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return internal(err)
}
