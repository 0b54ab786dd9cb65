package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// doc describes a route for the OpenAPI document.
type doc struct {
	summary  string
	body     any      // zero value of the request body type, nil for none
	response any      // zero value of the answer type
	status   int      // success status; 200 when zero
	query    []string // query parameters besides limit and after
}

// openAPIDoc is the generated document; its shape is free-form JSON.
type openAPIDoc = map[string]any

// Version is the API's version in the OpenAPI document.
const Version = "1.0.0"

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// OpenAPI builds the OpenAPI 3.1 document from the route table.
func (a *API) OpenAPI() openAPIDoc {
	schemas := map[string]any{
		"Error": map[string]any{
			"type": "object", "required": []string{"error"},
			"properties": map[string]any{"error": map[string]any{
				"type": "object", "required": []string{"code", "message"},
				"properties": map[string]any{"code": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}},
			}},
		},
	}
	paths := map[string]any{}
	for _, rt := range a.routes {
		item, _ := paths[rt.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.path] = item
		}
		op := map[string]any{"summary": rt.doc.summary, "operationId": operationID(rt.method, rt.path)}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		q := rt.doc.query
		if strings.HasPrefix(reflect.TypeOf(rt.doc.response).Name(), "List[") {
			q = append([]string{"limit", "after"}, q...)
		}
		for _, name := range q {
			typ := "string"
			if name == "limit" {
				typ = "integer"
			}
			params = append(params, map[string]any{"name": name, "in": "query", "required": false, "schema": map[string]any{"type": typ}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.doc.body != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": schemaRef(reflect.TypeOf(rt.doc.body), schemas)}}}
		}
		status := rt.doc.status
		if status == 0 {
			status = http.StatusOK
		}
		responses := map[string]any{
			itoa(status): map[string]any{"description": http.StatusText(status), "content": map[string]any{
				"application/json": map[string]any{"schema": schemaRef(reflect.TypeOf(rt.doc.response), schemas)}}},
			"default": map[string]any{"$ref": "#/components/responses/Error"},
		}
		for _, code := range routeErrors(rt) {
			responses[itoa(code)] = map[string]any{"$ref": "#/components/responses/" + errorResponses[code].name}
		}
		op["responses"] = responses
		if rt.access.public {
			op["security"] = []any{} // public on purpose: no token
			op["description"] = "Public: needs no token."
		} else {
			op["security"] = []any{map[string]any{"bearer": []string{}}}
			role := string(rt.access.role)
			if rt.access.service {
				role = "service administrator"
			}
			op["description"] = "Needs a token with the " + role + " role; every query is scoped to the token's tenant."
			if rt.access.researcher {
				op["description"] = "Needs a researcher token; a researcher sees and changes only their own applications and reports."
			}
		}
		item[strings.ToLower(rt.method)] = op
	}
	return openAPIDoc{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Rampart admin API", "version": Version,
			"description": "Admin API of Rampart, the security service for fleets of connected Linux devices."},
		// Relative to where this document is served: the server that answered.
		"servers": []any{map[string]any{"url": "/", "description": "this Rampart server"}},
		"paths":   paths,
		"components": map[string]any{
			"schemas":         schemas,
			"responses":       errorResponseComponents(),
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	}
}

// errorResponses names the client errors the document lists per route, each answered in the one
// envelope (schema Error) with the code of doc/api.md.
var errorResponses = map[int]struct{ name, description string }{
	http.StatusBadRequest:            {"BadRequest", "bad_request: invalid input (a malformed body or field, a path or query that is not UTF-8 text)"},
	http.StatusUnauthorized:          {"Unauthorized", "unauthorized: no token, or a malformed, unknown or revoked one"},
	http.StatusForbidden:             {"Forbidden", "forbidden: the token's role or kind may not call this route"},
	http.StatusNotFound:              {"NotFound", "not_found: the object named in the path does not exist in the caller's tenant"},
	http.StatusConflict:              {"Conflict", "conflict: the request clashes with the current state (already exists, wrong state)"},
	http.StatusRequestEntityTooLarge: {"TooLarge", "too_large: the body is over its size limit"},
	http.StatusUnsupportedMediaType:  {"UnsupportedMediaType", "unsupported_media_type: the body is not application/json"},
	http.StatusTooManyRequests:       {"RateLimited", "rate_limited: too many requests from this address; Retry-After says when to try again"},
}

// routeErrors lists the client errors a route can answer: every route checks its input (400);
// a route with a token may refuse it (401, 403); a path parameter may name nothing (404); a
// change may clash with the state (409); a JSON body may be too large or of another type (413,
// 415); the public application route is rate limited (429).
func routeErrors(rt route) []int {
	out := []int{http.StatusBadRequest}
	if !rt.access.public {
		out = append(out, http.StatusUnauthorized, http.StatusForbidden)
	}
	if strings.Contains(rt.path, "{") {
		out = append(out, http.StatusNotFound)
	}
	if rt.method != http.MethodGet {
		out = append(out, http.StatusConflict)
	}
	if rt.doc.body != nil {
		out = append(out, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
	}
	if rt.access.public && rt.method == http.MethodPost {
		out = append(out, http.StatusTooManyRequests)
	}
	return out
}

func errorResponseComponents() map[string]any {
	envelope := map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}
	out := map[string]any{"Error": map[string]any{"description": "An error, in the one envelope", "content": envelope}}
	for _, e := range errorResponses {
		out[e.name] = map[string]any{"description": e.description, "content": envelope}
	}
	return out
}

func (a *API) openAPI(w http.ResponseWriter, r *http.Request, _ *principal) error {
	writeJSON(w, http.StatusOK, a.OpenAPI())
	return nil
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.Split(strings.TrimPrefix(strings.TrimPrefix(path, "/api/v1/"), "/"), "/") {
		part = strings.Trim(part, "{}")
		part = strings.ReplaceAll(strings.ReplaceAll(part, ".", "_"), "-", "_")
		for _, w := range strings.Split(part, "_") {
			if w != "" {
				b.WriteString(strings.ToUpper(w[:1]) + w[1:])
			}
		}
	}
	return b.String()
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

// schemaRef returns the JSON Schema of t, registering named struct types under components.
func schemaRef(t reflect.Type, schemas map[string]any) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"type": "object"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaRef(t.Elem(), schemas)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaRef(t.Elem(), schemas)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaRef(t.Elem(), schemas)}
	case reflect.Struct:
		name := schemaName(t)
		if _, done := schemas[name]; !done {
			schemas[name] = map[string]any{} // placeholder against recursion
			props := map[string]any{}
			var required []string
			for f := range t.Fields() {
				tag := f.Tag.Get("json")
				if !f.IsExported() || tag == "-" {
					continue
				}
				fname, opts, _ := strings.Cut(tag, ",")
				if fname == "" {
					fname = f.Name
				}
				props[fname] = schemaRef(f.Type, schemas)
				if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
					required = append(required, fname)
				}
			}
			s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
			if required != nil {
				s["required"] = required
			}
			schemas[name] = s
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// schemaName turns "List[github.com/.../client.Product]" into "ProductList".
func schemaName(t reflect.Type) string {
	name := t.Name()
	if inner, ok := strings.CutPrefix(name, "List["); ok {
		inner = strings.TrimSuffix(inner, "]")
		if i := strings.LastIndex(inner, "."); i >= 0 {
			inner = inner[i+1:]
		}
		return inner + "List"
	}
	if name == "" {
		return "Object"
	}
	return name
}
