package tasks

import (
	"context"
	"log/slog"
	"time"
)

// DefaultRefreshEvery is how often the online TUF roles are checked for re-signing unless
// configured; timestamps live a day and are re-signed at half-life.
const DefaultRefreshEvery = 10 * time.Minute

// Refresher keeps the online TUF roles and the director metadata fresh: it calls Refresh at
// start and then at every interval (release.Service.Refresh re-signs what is half-way to
// expiring).
type Refresher struct {
	roles interface{ Refresh(context.Context) error }
	every time.Duration
	log   *slog.Logger
}

// NewRefresher makes a Refresher of roles (a *release.Service); every is DefaultRefreshEvery
// when zero, log discards when nil.
func NewRefresher(roles interface{ Refresh(context.Context) error }, every time.Duration, log *slog.Logger) *Refresher {
	if every <= 0 {
		every = DefaultRefreshEvery
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Refresher{roles: roles, every: every, log: log}
}

// Run refreshes now and every interval until ctx ends, then returns nil. A failed refresh is
// logged and retried at the next tick.
func (r *Refresher) Run(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		if err := r.roles.Refresh(ctx); err != nil {
			r.log.Error("refresh of online TUF roles failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
