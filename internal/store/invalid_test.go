package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestInvalidSentences pins the sentence the API answers for input the store refuses: made in
// the store, still ErrInvalid, with no operation names.
func TestInvalidSentences(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := newTenant(t, s, "acme")
		newProductIn(t, s, a.ID, "thermostat")
		answer := func(_ any, _ string, err error) error { return err }
		for _, tc := range []struct {
			name string
			err  error
			want string
		}{
			{"cursor", answer(s.ListAudit(ctx, a.ID, store.AuditFilter{}, store.Page{After: "abc"})),
				"the after cursor is not one this server issued; start from the first page"},
			{"group without product", answer(s.ListDevices(ctx, a.ID, store.DeviceFilter{Group: "Production"}, store.Page{})),
				"a group is named within a product; give the product too"},
			{"preauthorisation kind", s.Preauthorize(ctx, actor, a.ID, "serial", hash("x"), "thermostat", "Production"),
				`kind "serial" is not ek or key`},
			{"preauthorisation hash", s.Preauthorize(ctx, actor, a.ID, store.PreauthEK, "abc", "thermostat", "Production"),
				"the hash must be a SHA-256 in 64 lowercase hex characters"},
		} {
			if !errors.Is(tc.err, store.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", tc.name, tc.err)
			}
			if msg, ok := public.Message(tc.err); !ok || msg != tc.want || public.KindOf(tc.err) != public.Invalid {
				t.Errorf("%s: sentence %q (%v, %v), want %q (invalid)", tc.name, msg, ok, public.KindOf(tc.err), tc.want)
			}
		}
	})
}
