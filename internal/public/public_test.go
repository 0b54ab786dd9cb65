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
