package console_test

import (
	"net/url"
	"testing"
)

// seeded is tenant A's data that other tenants' probes aim at.
type seeded struct {
	tokenID string
	leaks   []string
}

// seedTenant gives tenant "default" data for every page to show.
func seedTenant(t *testing.T, h *harness) *seeded {
	t.Helper()
	tok := h.token(h.admin, "reader")
	return &seeded{tokenID: tok.ID, leaks: []string{tok.ID}}
}

// probes are the page probes of tenant A's data, beyond the framework's own routes.
func (a *seeded) probes() map[string]consoleProbe {
	return map[string]consoleProbe{}
}

// writes are the state-changing routes aimed at tenant A's data, for a reader of A.
func (a *seeded) writes() map[string]consoleProbe {
	return map[string]consoleProbe{}
}

var _ = url.Values{}
