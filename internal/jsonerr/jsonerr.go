// Package jsonerr reads what encoding/json says when it refuses a document, for those that
// decode a person's JSON strictly and word the refusal themselves: the admin API
// (internal/api), the CLI's input files (internal/cli/clienv) and program documents
// (internal/program). It writes no sentence; each caller keeps its own. Any package may import
// it; it imports only the standard library.
package jsonerr

import (
	"reflect"
	"strings"
)

// UnknownField returns the field that err, from a json.Decoder with DisallowUnknownFields,
// refuses as unknown, quoted as encoding/json quotes it ("\"colour\""). encoding/json has no
// typed error for an unknown field (golang/go#40982), so this reads the standard library's fixed
// "json: unknown field %q"; the name is the document's own. It is the one place that does.
func UnknownField(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	return strings.CutPrefix(err.Error(), "json: unknown field ")
}

// Want is the JSON a value of type t decodes from, for a sentence: "a string", "a boolean",
// "a number", "an array" or "an object".
func Want(t reflect.Type) string {
	if t == nil {
		return "an object"
	}
	switch k := t.Kind().String(); {
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "slice" || k == "array":
		return "an array"
	}
	return "an object"
}
