package deviceapi

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodePlain is DecodeEvidence without lifting the logs: encoding/json alone.
func decodePlain(data []byte) (*Evidence, error) {
	var ev Evidence
	if err := decodeJSON(data, &ev); err != nil {
		return nil, err
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	return &ev, nil
}

// sameAsPlain fails t unless DecodeEvidence and encoding/json alone agree on data:
// both refuse it, or both accept it with the same evidence.
func sameAsPlain(t *testing.T, data []byte) (*Evidence, error) {
	t.Helper()
	got, err := DecodeEvidence(bytes.NewReader(data))
	want, wantErr := decodePlain(data)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("DecodeEvidence error %v, encoding/json alone %v", err, wantErr)
	}
	if err != nil && !errors.Is(err, ErrMalformed) {
		t.Fatalf("error wraps no sentinel: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("DecodeEvidence differs from encoding/json alone (-plain +got):\n%s", diff)
	}
	return got, err
}

// TestDecodeEvidenceLiftedLogs: lifting the logs out of the body decodes exactly
// what encoding/json decodes, on the bodies where the two could part: escapes,
// duplicate and case-folded keys, the key inside another string, line breaks.
func TestDecodeEvidenceLiftedLogs(t *testing.T) {
	good := seed(t, "FuzzDecodeEvidence", "platform_logs")
	ev, err := sameAsPlain(t, good)
	if err != nil || len(ev.EventLog) == 0 || len(ev.IMALog) == 0 {
		t.Fatalf("seed with both logs: %v", err)
	}
	if _, spans, ok := liftBlobs(good, "event_log", "ima_log"); !ok || spans[0].end == spans[0].start || spans[1].end == spans[1].start {
		t.Fatal("the seed's logs are not lifted: the test would not test the lifted path")
	}
	s := string(good)
	imaAt := strings.Index(s, `"ima_log":"`) + len(`"ima_log":"`)
	at := func(off int, insert string) string { return s[:imaAt+off] + insert + s[imaAt+off:] }
	body := strings.TrimSuffix(s, "}")
	for _, tc := range []struct {
		name string
		data string
		ok   bool
	}{
		{"escaped character in the log", at(0, `\u0041AAA`), true},
		{"escaped line break in the log", at(4, `\n`), true},
		{"raw line break in the log", at(4, "\n"), false},
		{"raw carriage return in the log", at(4, "\r"), false},
		{"character outside base64", at(4, "!"), false},
		{"non-ASCII in the log", at(4, "é"), false},
		{"control character in the log", at(4, "\t"), false},
		{"bad padding", at(0, "A"), false},
		{"log twice", body + `,"ima_log":"AAAA"}`, true},
		{"log in another case", body + `,"IMA_Log":"AAAA"}`, true},
		{"log in another case first", `{"Event_Log":"AAAA",` + s[1:], true},
		{"escaped key", body + `,"ima\u005flog":"AAAA"}`, true},
		{"log null", body + `,"ima_log":null}`, true},
		{"log empty", body + `,"ima_log":""}`, true},
		{"log as a number", body + `,"ima_log":1}`, false},
		{"key inside another string", strings.Replace(s, `"device_id":"`, `"x":"\",\"ima_log\":\"AAAA","device_id":"`, 1), false},
		{"spaces around the colon", strings.Replace(s, `"ima_log":"`, "\"ima_log\" \n:\t\"", 1), true},
		{"trailing comma", body + `,}`, false},
		{"no closing brace", body, false},
		{"unterminated log", s[:imaAt+2], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sameAsPlain(t, []byte(tc.data))
			if (err == nil) != tc.ok {
				t.Fatalf("accepted %v, want %v: %v", err == nil, tc.ok, err)
			}
		})
	}
}
