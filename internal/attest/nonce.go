package attest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"
)

// Nonce errors.
var (
	ErrNonceUnknown = errors.New("nonce unknown or already used")
	ErrNonceExpired = errors.New("nonce expired")
)

// Challenge is a nonce issued to one device, single-use and expiring. At
// enrolment of a TPM device it also carries the SHA-256 of the credential
// activation secret the device must return.
type Challenge struct {
	DeviceID         string
	Nonce            []byte
	Expires          time.Time
	ActivationDigest []byte
}

// Nonces keeps issued challenges until they are used or expire.
type Nonces interface {
	// Put records a challenge.
	Put(ctx context.Context, c Challenge) error
	// Take removes and returns the challenge issued to deviceID with nonce.
	// It fails with ErrNonceUnknown when no such challenge is outstanding
	// (never issued, already used, or issued to another device) and with
	// ErrNonceExpired when it expired before now; either way the nonce can
	// never be used again.
	Take(ctx context.Context, deviceID string, nonce []byte, now time.Time) (Challenge, error)
}

// MaxOutstanding is how many challenges one device may hold at once in
// MemoryNonces; issuing more drops the oldest.
const MaxOutstanding = 4

// MemoryNonces is an in-process Nonces for one server replica and tests.
type MemoryNonces struct {
	mu sync.Mutex
	m  map[string][]Challenge // by device ID, oldest first
}

// NewMemoryNonces returns an empty in-memory nonce store.
func NewMemoryNonces() *MemoryNonces {
	return &MemoryNonces{m: make(map[string][]Challenge)}
}

// Put implements Nonces.
func (s *MemoryNonces) Put(_ context.Context, c Challenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.m[c.DeviceID]
	if len(list) >= MaxOutstanding {
		list = append(list[:0:0], list[len(list)-MaxOutstanding+1:]...)
	}
	s.m[c.DeviceID] = append(list, c)
	return nil
}

// Take implements Nonces.
func (s *MemoryNonces) Take(_ context.Context, deviceID string, nonce []byte, now time.Time) (Challenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.m[deviceID]
	for i, c := range list {
		if !bytes.Equal(c.Nonce, nonce) {
			continue
		}
		list = append(list[:i:i], list[i+1:]...)
		if len(list) == 0 {
			delete(s.m, deviceID)
		} else {
			s.m[deviceID] = list
		}
		if now.After(c.Expires) {
			return Challenge{}, ErrNonceExpired
		}
		return c, nil
	}
	return Challenge{}, ErrNonceUnknown
}

// Prune drops every challenge expired before now; call it periodically.
func (s *MemoryNonces) Prune(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, list := range s.m {
		kept := list[:0]
		for _, c := range list {
			if !now.After(c.Expires) {
				kept = append(kept, c)
			}
		}
		if len(kept) == 0 {
			delete(s.m, id)
		} else {
			s.m[id] = kept
		}
	}
}
