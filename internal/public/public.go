// Package public holds the one error type whose sentence may be shown to a client or a user: a
// kind, a public message made where the error is made, and the private cause it wraps. The edge
// (the API's error envelope, the CLI's last line) shows Message and maps Kind to a status; the
// cause is only logged. Compare Tailscale's util/vizerror and Upspin's errors.E.
//
// Any package may import it; it imports only the standard library.
package public

import (
	"errors"
	"fmt"
)

// Kind says what sort of failure an error is, so that the edge can map it to a status once.
type Kind int

const (
	// Internal is a failure of the service itself; its message is never shown.
	Internal Kind = iota
	// Invalid is bad input from the caller.
	Invalid
	// NotFound is a missing (or another tenant's) object.
	NotFound
	// Conflict is a request that clashes with the current state (already exists, wrong state).
	Conflict
	// Forbidden is a caller who may not do this.
	Forbidden
	// Unauthorized is a caller who did not prove who they are.
	Unauthorized
	// TooLarge is input over its size limit.
	TooLarge
	// Unavailable is a temporary refusal; the caller may try again later.
	Unavailable
)

var kindNames = [...]string{"internal", "invalid", "not found", "conflict", "forbidden", "unauthorized", "too large", "unavailable"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k >= 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is an error with a sentence meant for the client. Error() joins the sentence and the cause
// for logs; Message is the sentence alone.
type Error struct {
	Kind    Kind
	Message string
	Err     error // the private cause; may be nil

	whole bool // Error() is Err's text alone, which already says Message (Errorf with %w, Mark)
}

func (e *Error) Error() string {
	switch {
	case e.Err == nil:
		return e.Message
	case e.whole:
		return e.Err.Error()
	}
	return e.Message + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an error whose whole text is public. A %w verb wraps its operand as in
// fmt.Errorf, so errors.Is still finds a sentinel, and the operand's text is part of the
// sentence: use it for a sentinel whose text is meant to be read ("%w: phase %d ...").
// An operand that carries a public sentence lends that sentence alone, not its whole text
// (which names operations and causes): public sentences compose ("component %s: %w") while
// Error() keeps every detail for the log.
func Errorf(kind Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	e := &Error{Kind: kind, Message: err.Error(), whole: true}
	if shown, ok := sentences(args); ok {
		e.Message = fmt.Errorf(format, shown...).Error()
	}
	switch err.(type) {
	case interface{ Unwrap() error }, interface{ Unwrap() []error }:
		e.Err = err
	default:
		if e.Message != err.Error() {
			e.Err = err
		}
	}
	return e
}

// sentences returns args with each error that carries a public sentence replaced by that
// sentence, and whether any was.
func sentences(args []any) ([]any, bool) {
	var shown []any
	for i, a := range args {
		err, ok := a.(error)
		if !ok {
			continue
		}
		pe, ok := As(err)
		if !ok {
			continue
		}
		if shown == nil {
			shown = append([]any(nil), args...)
		}
		shown[i] = errors.New(pe.Message)
	}
	return shown, shown != nil
}

// Wrap gives err a public sentence. The text of err is not shown to the client; errors.Is and
// errors.As still see it.
func Wrap(err error, kind Kind, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Err: err}
}

// Mark gives err a public sentence without changing its text: Error() is err's own text, which
// already says the sentence amid the operation and the sentinel ("store.X: invalid input: title:
// required"), and Message is the sentence alone. errors.Is and errors.As still see err.
func Mark(err error, kind Kind, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Err: err, whole: true}
}

// As returns the outermost public error in err's chain.
func As(err error) (*Error, bool) {
	return errors.AsType[*Error](err)
}

// Message returns the public sentence of err, and false when err carries none (the caller then
// shows a generic sentence, never err.Error()).
func Message(err error) (string, bool) {
	if e, ok := As(err); ok && e.Kind != Internal {
		return e.Message, true
	}
	return "", false
}

// KindOf returns the kind of the outermost public error in err's chain, or Internal.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}
