package audit

import (
	"errors"
	"testing"
	"time"
)

func chain(n int) []Record {
	var out []Record
	seq, h := int64(0), Genesis
	for i := range n {
		r := Next(seq, h, Record{TenantID: "t1", At: time.UnixMicro(int64(1000 + i)), Actor: "system", Action: "x.create", Target: "x/1", Details: "{}"})
		out = append(out, r)
		seq, h = r.Seq, r.Hash
	}
	return out
}

func verify(rs []Record, headSeq int64, headHash string) error {
	v := NewVerifier()
	for _, r := range rs {
		if err := v.Add(r); err != nil {
			return err
		}
	}
	_, err := v.Finish(headSeq, headHash)
	return err
}

func TestVerify(t *testing.T) {
	good := chain(5)
	head := good[len(good)-1]
	if err := verify(good, head.Seq, head.Hash); err != nil {
		t.Fatalf("intact chain: %v", err)
	}
	tests := []struct {
		name   string
		mutate func([]Record) []Record
	}{
		{"altered action", func(rs []Record) []Record { rs[2].Action = "x.delete"; return rs }},
		{"altered time", func(rs []Record) []Record { rs[1].At = rs[1].At.Add(time.Second); return rs }},
		{"removed middle", func(rs []Record) []Record { return append(rs[:2], rs[3:]...) }},
		{"removed tail", func(rs []Record) []Record { return rs[:4] }},
		{"reordered", func(rs []Record) []Record { rs[1], rs[2] = rs[2], rs[1]; return rs }},
		{"rehashed alone", func(rs []Record) []Record { rs[2].Details = `{"a":1}`; rs[2].Hash = ComputeHash(rs[2]); return rs }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := tt.mutate(append([]Record(nil), chain(5)...))
			if err := verify(rs, head.Seq, head.Hash); !errors.Is(err, ErrBroken) {
				t.Fatalf("verify = %v, want ErrBroken", err)
			}
		})
	}
}

func TestHashSeparatesFields(t *testing.T) {
	a := Record{Actor: "ab", Action: "c"}
	b := Record{Actor: "a", Action: "bc"}
	if ComputeHash(a) == ComputeHash(b) {
		t.Fatal("field boundaries are not part of the hash")
	}
}
