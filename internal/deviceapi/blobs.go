package deviceapi

import (
	"bytes"
	"encoding/base64"
	"io"

	"github.com/rampartsec/rampart/internal/public"
)

// The platform logs are most of an Evidence (an IMA log of 5,000 entries is
// 0.8 MB of base64) and encoding/json scans a string byte by byte twice
// before decoding it. DecodeEvidence therefore lifts the two log strings out
// of the body, lets encoding/json decode the rest exactly as before (unknown
// fields, trailing data and syntax still refused), and decodes the logs with
// base64.StdEncoding as encoding/json would. It does so only when the body
// is unambiguous: a top-level object whose log values are plain strings of
// base64, each key present once, no key spelled with an escape or
// in another case. Anything else is decoded by encoding/json alone.

// liftedBlob is one log string lifted out of a body: its content's offsets.
type liftedBlob struct{ start, end int }

// liftBlobs finds the top-level string values of keys in data. It returns
// the body with those strings emptied and the spans of their contents in
// data, or ok false when the body is not one it can split safely.
func liftBlobs(data []byte, keys ...string) (body []byte, spans []liftedBlob, ok bool) {
	spans = make([]liftedBlob, len(keys))
	found := make([]bool, len(keys))
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, nil, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return nil, nil, false
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, nil, false
		}
		end := bytes.IndexByte(data[i+1:], '"')
		if end < 0 {
			return nil, nil, false
		}
		key := data[i+1 : i+1+end]
		if bytes.IndexByte(key, '\\') >= 0 {
			return nil, nil, false
		}
		i = skipSpace(data, i+1+end+1)
		if i >= len(data) || data[i] != ':' {
			return nil, nil, false
		}
		i = skipSpace(data, i+1)
		k := -1
		for j, name := range keys {
			if string(key) == name {
				k = j
			} else if bytes.EqualFold(key, []byte(name)) {
				return nil, nil, false // encoding/json would match it case-insensitively
			}
		}
		if k >= 0 {
			if found[k] || i >= len(data) || data[i] != '"' {
				return nil, nil, false
			}
			end := bytes.IndexByte(data[i+1:], '"')
			if end < 0 || !plainBase64(data[i+1:i+1+end]) {
				return nil, nil, false
			}
			found[k], spans[k] = true, liftedBlob{i + 1, i + 1 + end}
			i += end + 2
		} else if i, ok = skipValue(data, i); !ok {
			return nil, nil, false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return nil, nil, false
		}
		if data[i] == '}' {
			break
		}
		if data[i] != ',' {
			return nil, nil, false
		}
		i = skipSpace(data, i+1)
	}
	lifted := 0
	for k := range spans {
		lifted += spans[k].end - spans[k].start
	}
	body = make([]byte, 0, len(data)-lifted)
	at := 0
	for {
		next := -1
		for k := range spans {
			if found[k] && spans[k].start >= at && (next < 0 || spans[k].start < spans[next].start) {
				next = k
			}
		}
		if next < 0 {
			break
		}
		body = append(body, data[at:spans[next].start]...)
		at = spans[next].end
	}
	body = append(body, data[at:]...)
	for k := range spans {
		if !found[k] {
			spans[k] = liftedBlob{}
		}
	}
	return body, spans, true
}

// skipValue returns the offset just past the JSON value at data[i]. It only
// finds the boundary of a well-formed value; encoding/json checks the syntax
// of everything it skips, since none of it is lifted.
func skipValue(data []byte, i int) (int, bool) {
	depth := 0
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			j, ok := skipString(data, i)
			if !ok {
				return 0, false
			}
			i = j
		case c == '{' || c == '[':
			depth++
			i++
		case c == '}' || c == ']':
			if depth == 0 {
				return i, true // the end of a scalar
			}
			depth--
			i++
		case c == ',' && depth == 0:
			return i, true
		default:
			i++
		}
		if depth == 0 && (c == '"' || c == '}' || c == ']') {
			return i, true
		}
	}
	return i, depth == 0
}

// skipString returns the offset just past the string starting at data[i].
func skipString(data []byte, i int) (int, bool) {
	i++
	for {
		j := bytes.IndexAny(data[i:], "\"\\")
		if j < 0 {
			return 0, false
		}
		i += j
		if data[i] == '"' {
			return i + 1, true
		}
		i += 2 // an escape: the next byte is never the closing quote
		if i > len(data) {
			return 0, false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// plainBase64 reports whether b, the content of a JSON string, needs no
// unescaping and has no line break, the one thing base64.StdEncoding skips
// that a JSON string refuses. Every other byte outside the base64 alphabet
// (a control character, non-ASCII) fails base64.StdEncoding.Decode as it
// fails encoding/json, so the two decodings accept the same strings.
func plainBase64(b []byte) bool {
	return bytes.IndexByte(b, '\\') < 0 && bytes.IndexByte(b, '\n') < 0 && bytes.IndexByte(b, '\r') < 0
}

// decodeBlob decodes one lifted log as encoding/json decodes a []byte.
func decodeBlob(name string, src []byte) ([]byte, error) {
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(dst, src)
	if err != nil {
		return nil, public.Errorf(public.Invalid, "%w: %s: %w", ErrMalformed, name, err)
	}
	return dst[:n], nil
}

// readLimited reads r to its end, refusing more than limit bytes. A reader
// that knows its length (bytes.Reader, a request body wrapped by the caller)
// is read into one buffer of that size.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	size := 512
	if l, ok := r.(interface{ Len() int }); ok && int64(l.Len()) <= limit {
		size = l.Len() + 1
	}
	data := make([]byte, 0, size)
	lr := io.LimitReader(r, limit+1)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := lr.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, public.Errorf(public.Invalid, "read: %w", err) // the client's own transport
		}
	}
	if int64(len(data)) > limit {
		return nil, public.Errorf(public.TooLarge, "%w: over %d bytes", ErrTooLarge, limit)
	}
	return data, nil
}
