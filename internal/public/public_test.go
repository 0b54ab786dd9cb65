package public

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestMessageHidesCause(t *testing.T) {
	err := fmt.Errorf("store.CreateProduct: %w", Wrap(io.ErrUnexpectedEOF, Conflict, "product %s already exists", "lamp"))
	msg, ok := Message(err)
	if !ok || msg != "product lamp already exists" {
		t.Fatalf("Message = %q, %v; want the sentence alone", msg, ok)
	}
	if KindOf(err) != Conflict {
		t.Fatalf("KindOf = %v, want conflict", KindOf(err))
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal("the cause is lost to errors.Is")
	}
	if got := err.Error(); got != "store.CreateProduct: product lamp already exists: unexpected EOF" {
		t.Fatalf("Error() = %q; the log line should keep the cause", got)
	}
}

func TestPlainErrorsHaveNoMessage(t *testing.T) {
	for _, err := range []error{
		errors.New("secret detail"),
		Wrap(errors.New("secret detail"), Internal, "internal"),
		nil,
	} {
		if msg, ok := Message(err); ok {
			t.Errorf("Message(%v) = %q, want none", err, msg)
		}
		if KindOf(err) != Internal {
			t.Errorf("KindOf(%v) = %v, want internal", err, KindOf(err))
		}
	}
}

func TestKindString(t *testing.T) {
	if Invalid.String() != "invalid" || Kind(99).String() != "kind(99)" {
		t.Fatalf("Kind.String: %q %q", Invalid.String(), Kind(99).String())
	}
}

var errSentinel = errors.New("invalid phase plan")

func TestErrorfWrapsSentinel(t *testing.T) {
	err := fmt.Errorf("rollout.Pause: %w", Errorf(Invalid, "%w: phase %d is empty", errSentinel, 2))
	if !errors.Is(err, errSentinel) {
		t.Fatal("errors.Is does not find the sentinel")
	}
	if msg, _ := Message(err); msg != "invalid phase plan: phase 2 is empty" {
		t.Fatalf("Message = %q", msg)
	}
	if got := err.Error(); got != "rollout.Pause: invalid phase plan: phase 2 is empty" {
		t.Fatalf("Error() = %q; the sentinel's text should appear once", got)
	}
	if e, _ := As(Errorf(Invalid, "no %s here", "verb")); e.Err != nil || e.Error() != "no verb here" {
		t.Fatalf("Errorf without %%w = %+v", e)
	}
}

func TestMarkKeepsText(t *testing.T) {
	cause := fmt.Errorf("program.Validate: %w: title: required", errSentinel)
	err := fmt.Errorf("store.X: %w", Mark(cause, Invalid, "title: required"))
	if got := err.Error(); got != "store.X: program.Validate: invalid phase plan: title: required" {
		t.Fatalf("Error() = %q; Mark must not change the text", got)
	}
	if msg, _ := Message(err); msg != "title: required" || !errors.Is(err, errSentinel) || KindOf(err) != Invalid {
		t.Fatalf("Message = %q, Is = %v, Kind = %v", msg, errors.Is(err, errSentinel), KindOf(err))
	}
}

func TestErrorfComposesSentences(t *testing.T) {
	// A lower layer's error: the operation for the log, a public sentence for the user.
	low := fmt.Errorf("update.Slots.Switch: %w", Wrap(io.ErrShortWrite, Unavailable, "cannot switch to slot b: disk full"))
	err := Errorf(Invalid, "component %s: %w", "rootfs", low)
	if msg, _ := Message(err); msg != "component rootfs: cannot switch to slot b: disk full" {
		t.Fatalf("Message = %q; want the lower sentence without its operation or cause", msg)
	}
	if got := err.Error(); got != "component rootfs: update.Slots.Switch: cannot switch to slot b: disk full: short write" {
		t.Fatalf("Error() = %q; the log line should keep everything", got)
	}
	if !errors.Is(err, io.ErrShortWrite) || KindOf(err) != Invalid {
		t.Fatalf("Is = %v, Kind = %v", errors.Is(err, io.ErrShortWrite), KindOf(err))
	}
	// %v composes too, and the log keeps the detail although nothing is wrapped.
	err = Errorf(Invalid, "refused: %v", low)
	if msg, _ := Message(err); msg != "refused: cannot switch to slot b: disk full" {
		t.Fatalf("Message = %q", msg)
	}
	if got := err.Error(); got != "refused: update.Slots.Switch: cannot switch to slot b: disk full: short write" {
		t.Fatalf("Error() = %q", got)
	}
}
