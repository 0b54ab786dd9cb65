package tasks

import (
	"context"
	"log/slog"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// DefaultReportsEvery is how often the vulnerability-response timers run unless configured.
const DefaultReportsEvery = time.Minute

// Reports is the vulnerability-response timer: it closes reports whose needs-more-info
// deadline has passed and samples the fleet coverage of every fix not yet complete.
type Reports struct {
	store *store.Store
	every time.Duration
	log   *slog.Logger
}

// NewReports makes the timers; every is DefaultReportsEvery when zero, log discards when nil.
func NewReports(st *store.Store, every time.Duration, log *slog.Logger) *Reports {
	if every <= 0 {
		every = DefaultReportsEvery
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reports{store: st, every: every, log: log}
}

// Run runs the timers until ctx ends, then returns nil. A failed round is logged and retried
// at the next tick; it never stops the server.
func (r *Reports) Run(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := r.store.AutoCloseExpired(ctx); ctx.Err() != nil {
			return nil
		} else if err != nil {
			r.log.Error("closing expired needs-more-info reports failed", "err", err)
		} else if n > 0 {
			r.log.Info("closed reports whose needs-more-info deadline passed", "reports", n)
		}
		if _, err := r.store.SampleAllCoverage(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("sampling fix coverage failed", "err", err)
		}
	}
}
