package deviceapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seed reads one committed fuzz seed (real messages recorded from the
// software attester and from swtpm).
func seed(t testing.TB, fuzzer, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", fuzzer, name))
	if err != nil {
		t.Fatal(err)
	}
	_, lit, ok := strings.Cut(strings.TrimSpace(string(b)), "[]byte(")
	if !ok {
		t.Fatalf("seed %s/%s: not a []byte corpus entry", fuzzer, name)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		t.Fatalf("seed %s/%s: %v", fuzzer, name, err)
	}
	return []byte(s)
}

// edit decodes a JSON object into a generic map, applies f and re-encodes it.
func edit(t *testing.T, data []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeEvidence(t *testing.T) {
	for _, name := range []string{"software", "swtpm"} {
		good := seed(t, "FuzzDecodeEvidence", name)
		if _, err := DecodeEvidence(bytes.NewReader(good)); err != nil {
			t.Fatalf("%s seed: %v", name, err)
		}
	}
	good := seed(t, "FuzzDecodeEvidence", "software")
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"truncated", good[:len(good)/2], ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"oversized", append(bytes.Repeat([]byte(" "), MaxEvidenceSize), good...), ErrTooLarge},
		{"trailing data", append(bytes.Clone(good), []byte(`{}`)...), ErrMalformed},
		{"unknown field", edit(t, good, func(m map[string]any) { m["extra"] = 1 }), ErrMalformed},
		{"short nonce", edit(t, good, func(m map[string]any) { m["nonce"] = "AAAA" }), ErrMalformed},
		{"uppercase device id", edit(t, good, func(m map[string]any) { m["device_id"] = strings.ToUpper(m["device_id"].(string)) }), ErrMalformed},
		{"no quote", edit(t, good, func(m map[string]any) { delete(m, "quote") }), ErrMalformed},
		{"no pcrs", edit(t, good, func(m map[string]any) { m["pcrs"] = []any{} }), ErrMalformed},
		{"pcr out of range", edit(t, good, func(m map[string]any) { m["pcrs"].([]any)[0].(map[string]any)["index"] = 24 }), ErrMalformed},
		{"pcr twice", edit(t, good, func(m map[string]any) {
			p := m["pcrs"].([]any)
			m["pcrs"] = append(p, p[0])
		}), ErrMalformed},
		{"event in the wrong pcr", edit(t, good, func(m map[string]any) { m["log"].([]any)[0].(map[string]any)["pcr"] = 15 }), ErrMalformed},
		{"unknown event type", edit(t, good, func(m map[string]any) { m["log"].([]any)[0].(map[string]any)["type"] = "firmware" }), ErrMalformed},
		{"short event digest", edit(t, good, func(m map[string]any) { m["log"].([]any)[0].(map[string]any)["digest"] = "abcd" }), ErrMalformed},
		{"control character in name", edit(t, good, func(m map[string]any) { m["log"].([]any)[0].(map[string]any)["name"] = "a\nb" }), ErrMalformed},
		{"too many events", edit(t, good, func(m map[string]any) {
			log := m["log"].([]any)
			for len(log) <= MaxEvents {
				log = append(log, log[0])
			}
			m["log"] = log
		}), ErrMalformed},
		{"oversized quote", edit(t, good, func(m map[string]any) { m["quote"] = make([]byte, MaxTPMBlob+1) }), ErrMalformed},
		{"activation secret of the wrong size", edit(t, good, func(m map[string]any) { m["activation_secret"] = []byte{1, 2, 3} }), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := DecodeEvidence(bytes.NewReader(tc.data))
			if !errors.Is(err, tc.want) {
				t.Fatalf("DecodeEvidence error %v, want %v", err, tc.want)
			}
			if ev != nil {
				t.Error("DecodeEvidence returned evidence with its error")
			}
		})
	}
}

func TestDecodeEnrollRequest(t *testing.T) {
	for _, name := range []string{"software", "swtpm"} {
		if _, err := DecodeEnrollRequest(bytes.NewReader(seed(t, "FuzzDecodeEnrollRequest", name))); err != nil {
			t.Fatalf("%s seed: %v", name, err)
		}
	}
	sw := seed(t, "FuzzDecodeEnrollRequest", "software")
	tpm := seed(t, "FuzzDecodeEnrollRequest", "swtpm")
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"truncated", tpm[:len(tpm)-10], ErrMalformed},
		{"oversized", append(bytes.Repeat([]byte(" "), MaxEnrollSize), sw...), ErrTooLarge},
		{"unknown attester", edit(t, sw, func(m map[string]any) { m["attester"] = "fpga" }), ErrMalformed},
		{"software with an EK", edit(t, sw, func(m map[string]any) { m["ek_public"] = []byte{1} }), ErrMalformed},
		{"software with an EK certificate", edit(t, sw, func(m map[string]any) { m["ek_certificate"] = []byte{1} }), ErrMalformed},
		{"TPM without EK", edit(t, tpm, func(m map[string]any) { delete(m, "ek_public") }), ErrMalformed},
		{"TPM without creation attestation", edit(t, tpm, func(m map[string]any) { delete(m, "ak_create_attestation") }), ErrMalformed},
		{"intermediates without certificate", edit(t, tpm, func(m map[string]any) {
			delete(m, "ek_certificate")
			m["ek_intermediates"] = [][]byte{{1}}
		}), ErrMalformed},
		{"too many intermediates", edit(t, tpm, func(m map[string]any) {
			m["ek_intermediates"] = [][]byte{{1}, {2}, {3}, {4}, {5}}
		}), ErrMalformed},
		{"oversized EK certificate", edit(t, tpm, func(m map[string]any) { m["ek_certificate"] = make([]byte, MaxCertificate+1) }), ErrMalformed},
		{"no identity key", edit(t, sw, func(m map[string]any) { delete(m, "ak_public") }), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeEnrollRequest(bytes.NewReader(tc.data))
			if !errors.Is(err, tc.want) || req != nil {
				t.Fatalf("DecodeEnrollRequest = %v, %v; want nil, %v", req, err, tc.want)
			}
		})
	}
}

func TestQualifyingDataBindsBoth(t *testing.T) {
	n1, n2 := bytes.Repeat([]byte{1}, NonceSize), bytes.Repeat([]byte{2}, NonceSize)
	k1, k2 := []byte("key one"), []byte("key two")
	base := QualifyingData(n1, k1)
	if len(base) != 32 {
		t.Fatalf("qualifying data of %d bytes, want 32", len(base))
	}
	if bytes.Equal(base, QualifyingData(n2, k1)) || bytes.Equal(base, QualifyingData(n1, k2)) {
		t.Error("qualifying data does not change with the nonce or the key")
	}
	if !bytes.Equal(base, QualifyingData(n1, k1)) {
		t.Error("qualifying data is not deterministic")
	}
}

// TestAgentPCRsClearOfBootChain: the agent's PCRs are quoted, and none is a PCR
// the firmware, a bootloader, shim, systemd-stub, systemd or IMA extends.
func TestAgentPCRsClearOfBootChain(t *testing.T) {
	bootChain := map[int]string{0: "firmware", 1: "firmware", 2: "firmware", 3: "firmware", 4: "firmware",
		5: "firmware", 6: "firmware", 7: "firmware", 8: "grub", 9: "grub", 10: "ima", 11: "systemd-stub",
		12: "systemd-stub", 13: "systemd-stub", 14: "shim", 15: "systemd"}
	for _, typ := range []EventType{EventBoot, EventOS, EventAgent, EventApplication} {
		p, ok := PCRFor(typ)
		if !ok {
			t.Fatalf("no PCR for %s", typ)
		}
		if who, taken := bootChain[p]; taken {
			t.Errorf("%s events go to pcr %d, which %s extends", typ, p, who)
		}
		if !slices.Contains(QuotedPCRs, p) {
			t.Errorf("%s events go to pcr %d, which the quote does not cover", typ, p)
		}
		legacy, _ := LegacyPCRFor(typ)
		if !slices.Contains(LegacyQuotedPCRs, legacy) {
			t.Errorf("legacy pcr %d of %s not in LegacyQuotedPCRs", legacy, typ)
		}
	}
	for _, p := range BootPCRs {
		if !slices.Contains(QuotedPCRs, p) || !slices.Contains(LegacyQuotedPCRs, p) {
			t.Errorf("boot pcr %d is not quoted", p)
		}
	}
}

// FuzzDecodeEvidence: the decoder never panics, decodes what encoding/json
// alone decodes (the logs it lifts out included), and what it accepts
// re-encodes to evidence it accepts again, unchanged.
func FuzzDecodeEvidence(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"device_id":"","nonce":null,"pcrs":[{"index":-1}]}`))
	f.Add([]byte(`{"ima_log":"AA\\nAA","IMA_LOG":"AAAA","event_log":"AAAA"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := sameAsPlain(t, data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		again := reencode(t, ev, DecodeEvidence)
		if diff := cmp.Diff(again, ev); diff != "" {
			t.Fatalf("round trip changed the evidence (-got +want):\n%s", diff)
		}
	})
}

// FuzzDecodeEnrollRequest: the decoder never panics, and what it accepts
// re-encodes to a request it accepts again, unchanged.
func FuzzDecodeEnrollRequest(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"attester":"tpm","ak_public":"AAEC","ek_intermediates":[""]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeEnrollRequest(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		again := reencode(t, req, DecodeEnrollRequest)
		if diff := cmp.Diff(again, req); diff != "" {
			t.Fatalf("round trip changed the request (-got +want):\n%s", diff)
		}
	})
}

func reencode[T any](t *testing.T, v *T, decode func(io.Reader) (*T, error)) *T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("re-decoding accepted input: %v", err)
	}
	return out
}
