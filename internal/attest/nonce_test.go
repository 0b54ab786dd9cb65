package attest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestMemoryNonces(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	nonce := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	for _, tc := range []struct {
		name   string
		put    []Challenge
		device string
		nonce  []byte
		at     time.Time
		want   error
	}{
		{"issued and fresh", []Challenge{{DeviceID: "a", Nonce: nonce(1), Expires: now.Add(time.Minute)}}, "a", nonce(1), now, nil},
		{"expired", []Challenge{{DeviceID: "a", Nonce: nonce(1), Expires: now.Add(time.Minute)}}, "a", nonce(1), now.Add(2 * time.Minute), ErrNonceExpired},
		{"other device", []Challenge{{DeviceID: "a", Nonce: nonce(1), Expires: now.Add(time.Minute)}}, "b", nonce(1), now, ErrNonceUnknown},
		{"never issued", nil, "a", nonce(1), now, ErrNonceUnknown},
		{"oldest dropped past the limit", []Challenge{
			{DeviceID: "a", Nonce: nonce(1), Expires: now.Add(time.Minute)},
			{DeviceID: "a", Nonce: nonce(2), Expires: now.Add(time.Minute)},
			{DeviceID: "a", Nonce: nonce(3), Expires: now.Add(time.Minute)},
			{DeviceID: "a", Nonce: nonce(4), Expires: now.Add(time.Minute)},
			{DeviceID: "a", Nonce: nonce(5), Expires: now.Add(time.Minute)},
		}, "a", nonce(1), now, ErrNonceUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemoryNonces()
			for _, c := range tc.put {
				if err := s.Put(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			_, err := s.Take(ctx, tc.device, tc.nonce, tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Take: %v, want %v", err, tc.want)
			}
			// Whatever the outcome, the nonce cannot be used again.
			if _, err := s.Take(ctx, tc.device, tc.nonce, tc.at); !errors.Is(err, ErrNonceUnknown) {
				t.Errorf("second Take: %v, want ErrNonceUnknown", err)
			}
		})
	}
}

func TestMemoryNoncesPrune(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	s := NewMemoryNonces()
	old := Challenge{DeviceID: "a", Nonce: []byte{1}, Expires: now.Add(-time.Second)}
	fresh := Challenge{DeviceID: "a", Nonce: []byte{2}, Expires: now.Add(time.Minute)}
	for _, c := range []Challenge{old, fresh} {
		if err := s.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	s.Prune(now)
	if _, err := s.Take(ctx, "a", old.Nonce, now.Add(-time.Hour)); !errors.Is(err, ErrNonceUnknown) {
		t.Errorf("pruned nonce: %v, want ErrNonceUnknown", err)
	}
	if _, err := s.Take(ctx, "a", fresh.Nonce, now); err != nil {
		t.Errorf("fresh nonce after prune: %v", err)
	}
}

// A SQLite server's nonces live in memory (NewService); challenges never answered are dropped
// once expired, every pruneEvery issued, so they do not pile up.
func TestPrunedNoncesDropExpired(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	p := &prunedNonces{MemoryNonces: NewMemoryNonces(), now: func() time.Time { return now }}
	ctx := context.Background()
	for i := range pruneEvery - 1 {
		c := Challenge{DeviceID: fmt.Sprintf("device-%d", i), Nonce: []byte{byte(i)}, Expires: now.Add(-time.Second)}
		if err := p.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(p.m); n != pruneEvery-1 {
		t.Fatalf("%d devices hold challenges before the prune, want %d", n, pruneEvery-1)
	}
	fresh := Challenge{DeviceID: "fresh", Nonce: []byte("n"), Expires: now.Add(time.Minute)}
	if err := p.Put(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if n := len(p.m); n != 1 {
		t.Errorf("%d devices hold challenges after the prune, want only the fresh one", n)
	}
	if _, err := p.Take(ctx, "fresh", []byte("n"), now); err != nil {
		t.Errorf("the fresh challenge: %v", err)
	}
	if _, err := p.Take(ctx, "fresh", []byte("n"), now); !errors.Is(err, ErrNonceUnknown) {
		t.Errorf("a nonce taken twice: %v, want ErrNonceUnknown", err)
	}
}
