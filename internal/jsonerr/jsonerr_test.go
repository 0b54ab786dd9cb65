package jsonerr

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestUnknownField reads the field name out of encoding/json's own refusal, and nothing out of
// another error: the test that tells when a Go release rewords it.
func TestUnknownField(t *testing.T) {
	dec := json.NewDecoder(strings.NewReader(`{"name":"a","colour":"red"}`))
	dec.DisallowUnknownFields()
	var v struct{ Name string }
	err := dec.Decode(&v)
	if f, ok := UnknownField(err); !ok || f != `"colour"` {
		t.Errorf("UnknownField(%v) = %q, %v; want \"colour\" quoted", err, f, ok)
	}
	for _, other := range []error{nil, errors.New("unexpected EOF")} {
		if f, ok := UnknownField(other); ok {
			t.Errorf("UnknownField(%v) = %q, true; want false", other, f)
		}
	}
}

func TestWant(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"", "a string"}, {true, "a boolean"}, {int8(0), "a number"}, {uint(0), "a number"}, {1.5, "a number"},
		{[2]int{}, "an array"}, {[]string(nil), "an array"}, {&struct{}{}, "an object"}, {map[string]int(nil), "an object"},
	} {
		if got := Want(reflect.TypeOf(tc.v)); got != tc.want {
			t.Errorf("Want(%T) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
