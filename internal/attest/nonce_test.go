package attest

import (
	"bytes"
	"context"
	"errors"
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
