package deviceapi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// framed frames sections after the magic: each a big-endian length and its bytes.
func framed(sections ...[]byte) []byte {
	out := append([]byte(nil), evidenceMagic[:]...)
	for _, s := range sections {
		out = binary.BigEndian.AppendUint32(out, uint32(len(s)))
		out = append(out, s...)
	}
	return out
}

// TestDecodeEvidenceFramed: a framed evidence decodes to exactly what its JSON form decodes
// to, and every way a frame can be wrong is refused with the wire sentinels.
func TestDecodeEvidenceFramed(t *testing.T) {
	for _, name := range []string{"software", "swtpm", "platform_logs"} {
		ev, err := DecodeEvidence(bytes.NewReader(seed(t, "FuzzDecodeEvidence", name)))
		if err != nil {
			t.Fatalf("%s seed: %v", name, err)
		}
		b, err := EncodeEvidence(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEvidenceFramed(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s framed: %v", name, err)
		}
		if diff := cmp.Diff(got, ev); diff != "" {
			t.Fatalf("%s: framed decodes differently from JSON (-framed +json):\n%s", name, diff)
		}
	}
	ev, err := DecodeEvidence(bytes.NewReader(seed(t, "FuzzDecodeEvidence", "platform_logs")))
	if err != nil {
		t.Fatal(err)
	}
	head := *ev
	head.EventLog, head.IMALog = nil, nil
	j, err := EncodeEvidence(&head)
	if err != nil {
		t.Fatal(err)
	}
	js := j[8 : 8+binary.BigEndian.Uint32(j[4:8])] // the JSON section
	withLogs := seed(t, "FuzzDecodeEvidence", "platform_logs")
	good := framed(js, ev.EventLog, ev.IMALog)
	if _, err := DecodeEvidenceFramed(bytes.NewReader(good)); err != nil {
		t.Fatalf("hand-framed evidence: %v", err)
	}
	huge := binary.BigEndian.AppendUint32(append([]byte(nil), evidenceMagic[:]...), uint32(maxEvidenceJSON+1))
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"JSON body", withLogs, ErrMalformed},
		{"wrong magic", append([]byte("RAE\x02"), good[4:]...), ErrMalformed},
		{"truncated in a length", good[:6], ErrMalformed},
		{"truncated in the IMA log", good[:len(good)-1], ErrMalformed},
		{"no IMA section", framed(js, ev.EventLog), ErrMalformed},
		{"trailing data", append(bytes.Clone(good), 0), ErrMalformed},
		{"JSON section over its limit", huge, ErrTooLarge},
		{"event log over its limit", framed(js, make([]byte, MaxEventLog+1), nil), ErrTooLarge},
		{"IMA log over its limit", framed(js, nil, make([]byte, MaxIMALog+1)), ErrTooLarge},
		{"logs in the JSON too", framed(withLogs, nil, nil), ErrMalformed},
		{"unknown field", framed(edit(t, js, func(m map[string]any) { m["extra"] = 1 }), nil, nil), ErrMalformed},
		{"JSON trailing data", framed(append(bytes.Clone(js), '{', '}'), nil, nil), ErrMalformed},
		{"short nonce", framed(edit(t, js, func(m map[string]any) { m["nonce"] = "AAAA" }), nil, nil), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := DecodeEvidenceFramed(bytes.NewReader(tc.data))
			if !errors.Is(err, tc.want) {
				t.Fatalf("DecodeEvidenceFramed error %v, want %v", err, tc.want)
			}
			if ev != nil {
				t.Error("DecodeEvidenceFramed returned evidence with its error")
			}
		})
	}
}

// FuzzDecodeEvidenceFramed: the decoder never panics, every refusal wraps a wire sentinel, and
// what it accepts frames again to the same bytes and decodes as JSON to the same evidence.
func FuzzDecodeEvidenceFramed(f *testing.F) {
	f.Add([]byte{})
	f.Add(framed([]byte(`{}`), nil, nil))
	f.Add(framed([]byte(`{"event_log":"AAAA"}`), []byte{1}, []byte{2}))
	for _, name := range []string{"software", "platform_logs"} {
		ev, err := DecodeEvidence(bytes.NewReader(seed(f, "FuzzDecodeEvidence", name)))
		if err != nil {
			f.Fatal(err)
		}
		b, err := EncodeEvidence(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvidenceFramed(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		again, err := EncodeEvidence(ev)
		if err != nil {
			t.Fatal(err)
		}
		ev2, err := DecodeEvidenceFramed(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-framed evidence refused: %v", err)
		}
		if diff := cmp.Diff(ev2, ev); diff != "" {
			t.Fatalf("round trip changed the evidence (-got +want):\n%s", diff)
		}
		asJSON := reencode(t, ev, DecodeEvidence)
		if diff := cmp.Diff(asJSON, ev); diff != "" {
			t.Fatalf("the JSON form decodes differently (-json +framed):\n%s", diff)
		}
	})
}
