// Package audit owns the shape of Rampart's audit records and the hash chain that links them.
//
// Every security-relevant change appends one Record to its tenant's chain in the same database
// transaction as the change itself (the store does the appending). Each record's hash covers its
// own fields and the hash of the record before it, so altering, removing or reordering any row
// breaks Verify. This package is pure: it computes and checks hashes and never touches storage.
// The store and the API import it.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"time"

	"github.com/rampartsec/rampart/internal/public"
)

// Genesis is the previous-hash value of the first record in every chain.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one entry of a tenant's audit chain.
type Record struct {
	TenantID string
	Seq      int64 // 1 for the first record of a tenant
	At       time.Time
	Actor    string // "token:<id>", "device:<id>", "system"
	Action   string // "product.create"
	Target   string // "product/<id>"
	Details  string // JSON object, "{}" when empty
	PrevHash string
	Hash     string
}

// ErrBroken reports a chain that does not verify.
var ErrBroken = errors.New("audit chain broken")

// ComputeHash returns the hex SHA-256 over the record's fields and its previous hash. The
// encoding is length-prefixed so that no two different records share an input.
func ComputeHash(r Record) string {
	h := sha256.New()
	writeField(h, r.TenantID)
	writeInt(h, r.Seq)
	writeInt(h, r.At.UnixMicro())
	writeField(h, r.Actor)
	writeField(h, r.Action)
	writeField(h, r.Target)
	writeField(h, r.Details)
	writeField(h, r.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
}

func writeField(h hash.Hash, s string) {
	writeInt(h, int64(len(s)))
	h.Write([]byte(s))
}

func writeInt(h hash.Hash, v int64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	h.Write(b[:])
}

// Next fills in Seq, PrevHash and Hash of r so that it follows a chain whose last record has
// sequence number headSeq and hash headHash (0 and Genesis for an empty chain).
func Next(headSeq int64, headHash string, r Record) Record {
	r.Seq = headSeq + 1
	r.PrevHash = headHash
	r.Hash = ComputeHash(r)
	return r
}

// Verifier checks a chain record by record, in sequence order, so that a chain of any length
// can be verified while streaming it from storage.
type Verifier struct {
	seq  int64
	hash string
}

// NewVerifier starts a verification at the beginning of a chain.
func NewVerifier() *Verifier { return &Verifier{hash: Genesis} }

// Add checks the next record of the chain.
func (v *Verifier) Add(r Record) error {
	if r.Seq != v.seq+1 {
		return public.Errorf(public.Conflict, "%w: record %d follows record %d", ErrBroken, r.Seq, v.seq)
	}
	if r.PrevHash != v.hash {
		return public.Errorf(public.Conflict, "%w: record %d does not link to record %d", ErrBroken, r.Seq, v.seq)
	}
	if got := ComputeHash(r); got != r.Hash {
		return public.Errorf(public.Conflict, "%w: record %d was altered (its hash does not match its contents)", ErrBroken, r.Seq)
	}
	v.seq, v.hash = r.Seq, r.Hash
	return nil
}

// Verified is how many records from the start of the chain checked out so far.
func (v *Verifier) Verified() int64 { return v.seq }

// Finish checks that the chain ended where its head says it ends, which catches removed tail
// records.
func (v *Verifier) Finish(headSeq int64, headHash string) (int64, error) {
	if v.seq != headSeq || v.hash != headHash {
		return v.seq, public.Errorf(public.Conflict, "%w: chain ends at record %d but its head names record %d", ErrBroken, v.seq, headSeq)
	}
	return v.seq, nil
}
