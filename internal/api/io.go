package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/jsonerr"
	pub "github.com/rampartsec/rampart/internal/public" // the package var public is a route's access
	"github.com/rampartsec/rampart/internal/store"
)

// MaxBodyBytes caps every admin API request body.
const MaxBodyBytes = 1 << 20

// decode reads exactly one JSON object of type T from the body: unknown fields, trailing data,
// wrong types and bodies over MaxBodyBytes are refused with a message that names the problem.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return newError(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "request body must be application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return decodeError(err)
	}
	if hasEscapedNUL(body) {
		return badRequest("request body holds a NUL character (\\u0000), which no text field accepts")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return decodeError(err)
		}
		return badRequest("request body must hold a single JSON object")
	}
	return nil
}

func decodeError(err error) *Error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is larger than %d bytes", MaxBodyBytes)
	}
	if e, ok := errors.AsType[*json.SyntaxError](err); ok {
		return badRequest("request body is not valid JSON (at byte %d)", e.Offset)
	}
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if e.Field == "" {
			return badRequest("request body must be a JSON object, not %s", e.Value)
		}
		return badRequest("field %q must be %s, not %s", e.Field, jsonerr.Want(e.Type), e.Value)
	}
	if errors.Is(err, io.EOF) {
		return badRequest("request body is empty; a JSON object is required")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest("request body is truncated JSON")
	}
	if f, ok := jsonerr.UnknownField(err); ok {
		return badRequest("unknown field %s", f)
	}
	return badRequest("request body is not valid JSON")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *Error) {
	var body client.ErrorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rampart"`)
	}
	writeJSON(w, e.Status, body)
}

// page reads ?limit= and ?after= .
func page(r *http.Request) (store.Page, error) {
	var p store.Page
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxPageSize {
			return p, badRequest("limit must be a whole number from 1 to %d", store.MaxPageSize)
		}
		p.Limit = n
	}
	p.After = r.URL.Query().Get("after")
	if len(p.After) > 512 {
		return p, badRequest("the after cursor is not one this server issued; start from the first page")
	}
	return p, nil
}

// list writes one page of items converted to their wire form.
func list[T, W any](w http.ResponseWriter, items []T, next string, conv func(T) W) {
	out := client.List[W]{Items: make([]W, 0, len(items)), Next: next}
	for _, it := range items {
		out.Items = append(out.Items, conv(it))
	}
	writeJSON(w, http.StatusOK, out)
}

// storeError maps the store's sentinel errors to client errors; what names the missing or
// duplicate thing in the message. Input the store refuses carries its own public sentence,
// made where the store refused it, and is answered by its kind.
func storeError(err error, what string) error {
	if _, ok := pub.Message(err); ok && errors.Is(err, store.ErrInvalid) {
		return fromPublic(err)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: what + " not found", Err: err}
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: what + " already exists", Err: err}
	case errors.Is(err, store.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "invalid request: " + what, Err: err}
	}
	return internal(err)
}
