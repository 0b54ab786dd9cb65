package attest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// IMAEntry is one measurement of the kernel's IMA log (templates ima-ng,
// ima-sig, ima-buf, ima-modsig): a file's digest and path.
type IMAEntry struct {
	Template string
	// FileAlg and FileDigest are the measured file's hash ("sha256", and its
	// bytes); empty for a violation.
	FileAlg    string
	FileDigest []byte
	Path       string
	// templateData is what the kernel hashed into the template digest.
	templateData []byte
	// path is Path's bytes, within the log (walkIMALog leaves Path empty).
	path      []byte
	violation bool
}

// Limits of the IMA log decoder, beyond deviceapi.MaxIMALog.
const (
	maxIMAEntries      = 50000
	maxIMATemplateName = 32   // TCG_EVENT_NAME_LEN_MAX is 255, real names are under 16
	maxIMATemplateData = 8192 // a path is at most PATH_MAX (4096) plus the digest and a signature
)

var errIMAMalformed = errors.New("ima log malformed")

// ParseIMALog decodes the kernel's binary_runtime_measurements strictly:
// every entry must be in PCR 10, use a template with length-prefixed fields,
// and end exactly at the end of the log. The entries' SHA-1 template digests
// are not checked here: replaying PCR 10 of the SHA-256 bank hashes each
// entry's data itself, and the older kernels' fallback hashes it with SHA-1.
func ParseIMALog(b []byte) ([]IMAEntry, error) {
	var out []IMAEntry
	if _, err := walkIMALog(b, func(e *IMAEntry) {
		e.Path = string(e.path)
		out = append(out, *e)
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// walkIMALog decodes the log as ParseIMALog does, handing each entry to fn
// in order rather than collecting them. The entry's byte slices alias b, its
// Path is empty (path holds it) and fn must not keep it. It returns the
// number of entries.
func walkIMALog(b []byte, fn func(*IMAEntry)) (int, error) {
	r := imaReader{b: b}
	var e IMAEntry
	for {
		ok, err := r.next(&e)
		if err != nil {
			return 0, err
		}
		if !ok {
			return r.n, nil
		}
		fn(&e)
	}
}

// imaReader decodes the log one entry at a time into an entry the caller
// owns (and keeps on its stack): no allocation and no copy per entry. The
// verifier replays and appraises the entries as it decodes them.
type imaReader struct {
	b []byte // what is left of the log
	n int    // entries decoded
}

// next decodes the next entry into e, whose byte slices then alias the log
// and whose Path is left empty (path holds it). It reports false at the end
// of the log; a log without a single entry is malformed.
func (r *imaReader) next(e *IMAEntry) (bool, error) {
	b, n := r.b, r.n
	if len(b) == 0 {
		if n == 0 {
			return false, fmt.Errorf("%w: empty", errIMAMalformed)
		}
		return false, nil
	}
	if n >= maxIMAEntries {
		return false, fmt.Errorf("%w: more than %d entries", errIMAMalformed, maxIMAEntries)
	}
	if len(b) < 4 {
		return false, fmt.Errorf("%w: entry %d truncated", errIMAMalformed, n)
	}
	if pcr := binary.LittleEndian.Uint32(b); pcr != 10 {
		return false, fmt.Errorf("%w: entry %d is in pcr %d, not 10", errIMAMalformed, n, pcr)
	}
	b = b[4:]
	if len(b) < sha1.Size {
		return false, fmt.Errorf("%w: entry %d truncated", errIMAMalformed, n)
	}
	tdigest := b[:sha1.Size]
	b = b[sha1.Size:]
	var nameLen uint32
	if len(b) >= 4 {
		nameLen, b = binary.LittleEndian.Uint32(b), b[4:]
	}
	if nameLen == 0 || nameLen > maxIMATemplateName || int(nameLen) > len(b) {
		return false, fmt.Errorf("%w: entry %d template name length %d", errIMAMalformed, n, nameLen)
	}
	*e = IMAEntry{violation: allZero(tdigest)}
	switch name := b[:nameLen]; string(name) { // constant names: no allocation per entry
	case "ima-ng":
		e.Template = "ima-ng"
	case "ima-sig":
		e.Template = "ima-sig"
	case "ima-buf":
		e.Template = "ima-buf"
	case "ima-modsig":
		e.Template = "ima-modsig"
	default:
		return false, fmt.Errorf("%w: entry %d has template %q", errIMAMalformed, n, name)
	}
	b = b[nameLen:]
	dataLen, ok := uint32(0), len(b) >= 4
	if ok {
		dataLen, b = binary.LittleEndian.Uint32(b), b[4:]
	}
	if !ok || dataLen > maxIMATemplateData || int(dataLen) > len(b) {
		return false, fmt.Errorf("%w: entry %d template data length %d", errIMAMalformed, n, dataLen)
	}
	e.templateData = b[:dataLen:dataLen]
	b = b[dataLen:]
	if err := e.parseFields(); err != nil {
		return false, fmt.Errorf("%w: entry %d: %v", errIMAMalformed, n, err)
	}
	r.b, r.n = b, n+1
	return true, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

var (
	errFieldTruncated = errors.New("field truncated")
	errFieldLong      = errors.New("field longer than the entry")
	errNoAlgorithm    = errors.New("digest field has no algorithm")
)

// nextField splits a length-prefixed template field off d.
func nextField(d []byte) (field, rest []byte, err error) {
	if len(d) < 4 {
		return nil, nil, errFieldTruncated
	}
	n := binary.LittleEndian.Uint32(d)
	if uint64(n) > uint64(len(d)-4) {
		return nil, nil, errFieldLong
	}
	return d[4 : 4+n], d[4+n:], nil
}

// parseFields reads the first two fields: d-ng ("alg:\0" digest) and n-ng
// (the NUL-terminated path, or the buffer's name for ima-buf).
func (e *IMAEntry) parseFields() error {
	dng, d, err := nextField(e.templateData)
	if err != nil {
		return err
	}
	nng, d, err := nextField(d)
	if err != nil {
		return err
	}
	var digest []byte
	if len(dng) >= 8 && string(dng[:8]) == "sha256:\x00" {
		// Nearly every entry: the same split as below, without the search.
		e.FileAlg, digest = "sha256", dng[8:]
	} else {
		alg, rest, ok := bytes.Cut(dng, []byte(":\x00"))
		if !ok || len(alg) == 0 || len(alg) > 16 {
			return errNoAlgorithm
		}
		switch string(alg) {
		case "sha256":
			e.FileAlg = "sha256"
		case "sha1":
			e.FileAlg = "sha1"
		default:
			e.FileAlg = string(alg)
		}
		digest = rest
	}
	e.FileDigest = digest
	if e.FileAlg == "sha256" && len(digest) != sha256.Size && !e.violation {
		return fmt.Errorf("sha256 file digest of %d bytes", len(digest))
	}
	if len(nng) > 0 && nng[len(nng)-1] == 0 {
		nng = nng[:len(nng)-1]
	}
	e.path = nng
	// ima-sig and ima-modsig carry more fields (signature, modsig): check they are well formed.
	for len(d) > 0 {
		if _, d, err = nextField(d); err != nil {
			return err
		}
	}
	return nil
}

// replayIMA recomputes PCR 10 of the SHA-256 bank from the entries and
// reports whether it matches quoted (see imaReplay).
func replayIMA(entries []IMAEntry, quoted []byte) bool {
	for _, padded := range []bool{false, true} {
		x := newIMAReplay(padded)
		for i := range entries {
			x.extend(&entries[i])
		}
		if bytes.Equal(x.pcr[:], quoted) {
			return true
		}
	}
	return false
}

// imaReplay recomputes PCR 10 of the SHA-256 bank, one entry at a time.
// Kernels since 5.11 extend each bank with the template data hashed by that
// bank's algorithm; older ones extend the SHA-1 template digest, zero-padded
// (padded). A violation extends all ones.
type imaReplay struct {
	padded bool
	pcr    [sha256.Size]byte
	buf    [2 * sha256.Size]byte // pcr || the entry's digest: one extend, no allocation
}

func newIMAReplay(padded bool) *imaReplay {
	return &imaReplay{padded: padded}
}

func (x *imaReplay) extend(e *IMAEntry) {
	var v [sha256.Size]byte
	switch {
	case e.violation:
		for j := range v {
			v[j] = 0xff
		}
	case x.padded:
		s := sha1.Sum(e.templateData)
		copy(v[:], s[:])
	default:
		v = sha256.Sum256(e.templateData)
	}
	copy(x.buf[:sha256.Size], x.pcr[:])
	copy(x.buf[sha256.Size:], v[:])
	x.pcr = sha256.Sum256(x.buf[:])
}

// FileDigestHex is the entry's file digest in lowercase hex, for SHA-256
// entries (the digest a release lists); empty otherwise.
func (e IMAEntry) FileDigestHex() string {
	if e.FileAlg != "sha256" || len(e.FileDigest) != sha256.Size {
		return ""
	}
	return hex.EncodeToString(e.FileDigest)
}

// bootAggregate is the IMA log's first entry, boot_aggregate, as the kernel wrote it when IMA
// started: a digest over the values PCRs 0-9 held then, which binds the log to the boot the
// firmware log describes. Kernels since 5.8 hash PCRs 0-9 of the bank of IMA's hash algorithm
// (SHA-256 here: "sha256:" and SHA-256 of the ten SHA-256 values in order); older ones hashed
// PCRs 0-7 of the SHA-1 bank, which the quote does not cover, so theirs cannot be checked.
type bootAggregate struct {
	seen   bool // the first entry was read
	isBoot bool // and it is boot_aggregate
	alg    string
	digest [sha256.Size]byte
	n      int // the digest's length
}

// keep records e, the log's first entry.
func (b *bootAggregate) keep(e *IMAEntry) {
	b.seen, b.isBoot, b.alg = true, string(e.path) == "boot_aggregate" && !e.violation, e.FileAlg
	b.n = copy(b.digest[:], e.FileDigest)
}

// check compares the boot_aggregate with the quoted PCRs 0-9 of the SHA-256 bank.
func (b *bootAggregate) check(quoted map[int][]byte) error {
	if !b.seen || !b.isBoot {
		return errors.New("the IMA log's first entry is not boot_aggregate")
	}
	if b.alg != "sha256" || b.n != sha256.Size {
		return fmt.Errorf("the IMA log's boot_aggregate is a %s digest: only a SHA-256 boot_aggregate (kernels since 5.8) is over the SHA-256 bank the quote covers", b.alg)
	}
	h := sha256.New()
	for i := 0; i <= 9; i++ {
		h.Write(quoted[i])
	}
	var want [sha256.Size]byte
	h.Sum(want[:0])
	if want != b.digest {
		return fmt.Errorf("the IMA log's boot_aggregate %x is not the digest of the quoted pcrs 0-9, %x: the log is not of the boot the firmware log describes", b.digest, want)
	}
	return nil
}
