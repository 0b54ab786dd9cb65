package api

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// checkText refuses a request whose path or query is not text both databases store: the decoded
// path and every query key and value must be valid UTF-8 without NUL. SQLite keeps any bytes;
// PostgreSQL refuses invalid UTF-8 and NUL in text columns and parameters, which surfaced as a 500
// on every lookup by name, filter or cursor. Checking here, before any route, answers 400 on both.
func checkText(r *http.Request) *Error {
	if !isText(r.URL.Path) {
		return badRequest("the request path is not valid UTF-8 text")
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("the query string is malformed")
	}
	for k, vs := range q {
		if !isText(k) {
			return badRequest("a query parameter name is not valid UTF-8 text")
		}
		for _, v := range vs {
			if !isText(v) {
				return badRequest("query parameter %q is not valid UTF-8 text", k)
			}
		}
	}
	return nil
}

// isText reports whether s is valid UTF-8 without NUL.
func isText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// RequireText serves next only for requests whose path and query are text (see checkText), and
// answers 400 in the error envelope otherwise. The server puts it in front of the routes the API
// does not serve itself (the image repository); the API checks its own routes.
func RequireText(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := checkText(r); e != nil {
			writeError(w, e)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hasEscapedNUL reports whether a JSON document holds a \u0000 escape in a string. encoding/json
// turns invalid UTF-8 into U+FFFD, but it decodes \u0000 into a NUL that PostgreSQL refuses to
// store. An escaped backslash (\\) is skipped whole, so the text "\\u0000" is not a NUL.
func hasEscapedNUL(doc []byte) bool {
	for i := 0; i < len(doc); i++ {
		if doc[i] != '\\' {
			continue
		}
		if i+5 < len(doc) && doc[i+1] == 'u' && string(doc[i+2:i+6]) == "0000" {
			return true
		}
		i++ // the escaped character
	}
	return false
}
