package keeper

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func TestKeeper(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn, err := s.CreateTenant(ctx, store.System, "", "acme")
		if err != nil {
			t.Fatal(err)
		}
		kek := make([]byte, 32)
		rand.Read(kek)
		k, err := New(s, kek, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Existing(ctx, tn.ID, tn.Name); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Existing before creation = %v, want ErrNotFound", err)
		}
		a, err := k.Authority(ctx, tn.ID, tn.Name)
		if err != nil {
			t.Fatal(err)
		}
		// A second keeper (another replica, or a restart) opens the same CA.
		k2, _ := New(s, kek, nil)
		b, err := k2.Existing(ctx, tn.ID, tn.Name)
		if err != nil || !b.Certificate().Equal(a.Certificate()) {
			t.Fatalf("second keeper: %v, same CA %v", err, err == nil && b.Certificate().Equal(a.Certificate()))
		}
		// The wrong key-encryption key cannot open it.
		wrong := make([]byte, 32)
		k3, _ := New(s, wrong, nil)
		if _, err := k3.Existing(ctx, tn.ID, tn.Name); err == nil {
			t.Fatal("a wrong KEK opened the CA")
		}
		recs, _, _ := s.ListAudit(ctx, tn.ID, store.AuditFilter{Action: "ca.create"}, store.Page{})
		if len(recs) != 1 {
			t.Fatalf("ca.create audit records = %d, want 1", len(recs))
		}
		if _, err := New(s, kek[:16], nil); err == nil {
			t.Fatal("a short KEK was accepted")
		}
	})
}
