package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestOIDCLogins: a pending sign-in is taken once, an expired one never, and putting a new
// one drops the expired.
func TestOIDCLogins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := s.Now()
		if err := s.PutOIDCLogin(ctx, "h1", "v1", "n1", now.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.PutOIDCLogin(ctx, "h1", "v2", "n2", now.Add(10*time.Minute)); err == nil {
			t.Error("a second sign-in under the same state was kept")
		}
		v, n, found, err := s.TakeOIDCLogin(ctx, "h1", now)
		if err != nil || !found || v != "v1" || n != "n1" {
			t.Fatalf("take: %q %q %v %v", v, n, found, err)
		}
		if _, _, found, err := s.TakeOIDCLogin(ctx, "h1", now); err != nil || found {
			t.Errorf("taken twice: %v %v", found, err)
		}
		if err := s.PutOIDCLogin(ctx, "h2", "v", "n", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, _, found, err := s.TakeOIDCLogin(ctx, "h2", now.Add(2*time.Minute)); err != nil || found {
			t.Errorf("expired sign-in taken: %v %v", found, err)
		}
		if err := s.PutOIDCLogin(ctx, "h3", "v", "n", now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.PutOIDCLogin(ctx, "h4", "v", "n", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := storetest.QueryRow(ctx, s, `SELECT COUNT(*) FROM oidc_logins`).Scan(&left); err != nil || left != 1 {
			t.Errorf("%d pending sign-ins kept, want 1 (the expired dropped): %v", left, err)
		}
	})
}
