package deviceapi

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/rampartsec/rampart/internal/public"
)

// ContentTypeEvidence is the media type of an Evidence framed with its platform logs as raw
// bytes (EncodeEvidence): what agents send to PathAttest. The platform logs are most of an
// Evidence (an IMA log of 5,000 entries is 0.6 MB), and in JSON they are base64, a third
// larger and decoded byte by byte; framed, they are read once into buffers of their exact
// size. A body of any other type is the JSON Evidence of older agents (DecodeEvidence).
const ContentTypeEvidence = "application/vnd.rampart.evidence"

// The framing: the magic, then three sections, each a big-endian uint32 length and its bytes:
// the Evidence as JSON without event_log and ima_log, the firmware's event log, the IMA log.
// Nothing may follow the last section.
var evidenceMagic = [4]byte{'R', 'A', 'E', 1}

// maxEvidenceJSON bounds the JSON section: everything of an Evidence but its platform logs.
const maxEvidenceJSON = MaxEvidenceSize - MaxEventLog - MaxIMALog

// EncodeEvidence frames ev for ContentTypeEvidence.
func EncodeEvidence(ev *Evidence) ([]byte, error) {
	head := *ev
	head.EventLog, head.IMALog = nil, nil
	j, err := json.Marshal(&head)
	if err != nil {
		return nil, fmt.Errorf("deviceapi.EncodeEvidence: %w", err)
	}
	out := make([]byte, 0, len(evidenceMagic)+12+len(j)+len(ev.EventLog)+len(ev.IMALog))
	out = append(out, evidenceMagic[:]...)
	for _, s := range [][]byte{j, ev.EventLog, ev.IMALog} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(s)))
		out = append(out, s...)
	}
	return out, nil
}

// EvidenceBody is an Evidence a device client sends framed (ContentTypeEvidence).
type EvidenceBody struct{ *Evidence }

// MarshalBody implements the device client's framed body.
func (b EvidenceBody) MarshalBody() (contentType string, body []byte, err error) {
	body, err = EncodeEvidence(b.Evidence)
	return ContentTypeEvidence, body, err
}

// DecodeEvidenceFramed reads one framed Evidence (ContentTypeEvidence) from r strictly: the
// magic, each section within its limit (the JSON part at most what MaxEvidenceSize leaves
// beside the largest logs, each log within MaxEventLog and MaxIMALog), the JSON decoded as
// DecodeEvidence decodes it and carrying no event_log or ima_log of its own, nothing after the
// last section, and every field within its limits.
func DecodeEvidenceFramed(r io.Reader) (*Evidence, error) {
	ev, err := decodeEvidenceFramed(r)
	if err != nil {
		return nil, fmt.Errorf("deviceapi.DecodeEvidenceFramed: %w", err)
	}
	return ev, nil
}

func decodeEvidenceFramed(r io.Reader) (*Evidence, error) {
	var magic [4]byte
	if err := readFull(r, magic[:]); err != nil {
		return nil, err
	}
	if magic != evidenceMagic {
		return nil, malformed("not a framed evidence (magic %x)", magic[:])
	}
	section := func(name string, limit int) ([]byte, error) {
		var n [4]byte
		if err := readFull(r, n[:]); err != nil {
			return nil, err
		}
		size := binary.BigEndian.Uint32(n[:])
		if uint64(size) > uint64(limit) {
			return nil, public.Errorf(public.TooLarge, "%w: %s is over %d bytes", ErrTooLarge, name, limit)
		}
		if size == 0 {
			return nil, nil
		}
		b := make([]byte, size) // the length is within its limit: one buffer of the exact size
		if err := readFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	head, err := section("the evidence", maxEvidenceJSON)
	if err != nil {
		return nil, err
	}
	var ev Evidence
	if err := decodeJSON(head, &ev); err != nil {
		return nil, err
	}
	if ev.EventLog != nil || ev.IMALog != nil {
		return nil, malformed("a framed evidence carries its logs in their own sections, not in the JSON")
	}
	if ev.EventLog, err = section("event_log", MaxEventLog); err != nil {
		return nil, err
	}
	if ev.IMALog, err = section("ima_log", MaxIMALog); err != nil {
		return nil, err
	}
	var one [1]byte
	switch n, err := io.ReadFull(r, one[:]); {
	case n > 0:
		return nil, malformed("trailing data after the last section")
	case err != nil && err != io.EOF:
		return nil, public.Errorf(public.Invalid, "read: %w", err) // the client's own transport
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	return &ev, nil
}

// readFull fills b from r; a body that ends early is malformed (truncated).
func readFull(r io.Reader, b []byte) error {
	_, err := io.ReadFull(r, b)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return malformed("truncated")
	case err != nil:
		return public.Errorf(public.Invalid, "read: %w", err) // the client's own transport
	}
	return nil
}
