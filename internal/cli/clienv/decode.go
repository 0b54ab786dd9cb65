package clienv

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"

	"github.com/rampartsec/rampart/internal/jsonerr"
	"github.com/rampartsec/rampart/internal/public"
)

// DecodeFile reads the JSON object in file into v strictly, as the server would: a field v does
// not have is refused by name rather than dropped, and the sentence says where.
func DecodeFile(file, what string, v any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return public.Wrap(err, public.Invalid, "cannot read %s (%v)", file, errors.Unwrap(err))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			return public.Errorf(public.Invalid, "%s holds more than one JSON value; it must be one %s", file, what)
		}
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line := 1 + bytes.Count(data[:min(int(syn.Offset), len(data))], []byte("\n"))
		return public.Wrap(err, public.Invalid, "%s is not valid JSON (line %d); it must be one %s", file, line, what)
	case errors.As(err, &typ) && typ.Field != "":
		return public.Wrap(err, public.Invalid, "%s: field %q must be %s, not %s", file, typ.Field, jsonerr.Want(typ.Type), typ.Value)
	case errors.As(err, &typ):
		return public.Wrap(err, public.Invalid, "%s must hold a JSON object (a %s), not %s", file, what, typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return public.Wrap(err, public.Invalid, "%s is empty or truncated; it must be one %s", file, what)
	}
	if f, ok := jsonerr.UnknownField(err); ok {
		return public.Wrap(err, public.Invalid, "%s: unknown field %s; a %s has no such field", file, f, what)
	}
	return public.Wrap(err, public.Invalid, "%s is not a %s in JSON", file, what)
}
