package tasks

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/wake"
)

// Waker wakes the devices a deployment offers its release to, on this replica's hub. The API
// calls WakeDeployment when an operator creates or resumes a deployment, the Stepper when it
// opens a phase; Run hears the deployments other replicas write (PostgreSQL only) and wakes
// this replica's devices for them.
type Waker struct {
	store *store.Store
	hub   *wake.Hub
	log   *slog.Logger
	// listening is set while Run hears the deployments other replicas write.
	listening atomic.Bool
}

// NewWaker makes a Waker for the devices waiting on hub; log discards when nil.
func NewWaker(st *store.Store, hub *wake.Hub, log *slog.Logger) *Waker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Waker{store: st, hub: hub, log: log}
}

// WakeDeployment wakes the devices of a deployment's group that it offers the release to now:
// those waiting on the hub's long-poll at once, and those between two waits (checking in at
// this very moment, or not yet waiting after their first check-in) at their next wait within
// wake.RememberFor, so that a deployment is not missed until the next wait timeout. It reads
// the group's members from the store; if that fails it wakes the waiting devices only.
func (w *Waker) WakeDeployment(d store.Deployment) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	members, err := w.store.GroupDeviceIDs(ctx, d.TenantID, d.GroupID)
	if err != nil {
		w.log.Warn("listing a deployment's devices to wake them failed; waking the waiting ones", "deployment", d.ID, "err", err)
		w.hub.WakeTagged(wake.GroupTag(d.TenantID, d.ProductName, d.GroupName), d.Offers)
		return
	}
	ids := members[:0]
	for _, id := range members {
		if d.Offers(id) {
			ids = append(ids, id)
		}
	}
	w.hub.Wake(ids...)
}

// Run hears the deployments other replicas write until ctx ends, then returns nil; a lost
// connection is logged and re-established (store.ListenDeployments). On SQLite it returns at
// once: one replica owns the database.
func (w *Waker) Run(ctx context.Context) error {
	w.store.ListenDeployments(ctx, store.DeploymentListener{
		Changed:   w.wakeChanged,
		Demoted:   w.wakeDemoted,
		Listening: func() { w.listening.Store(true) },
		Lost: func(err error) {
			w.listening.Store(false)
			w.log.Warn("lost the connection that hears other replicas' deployments; reconnecting", "err", err)
		},
	})
	return nil
}

// Listening reports whether Run hears the deployments other replicas write now.
func (w *Waker) Listening() bool { return w.listening.Load() }

// wakeChanged wakes this replica's devices that a deployment another replica wrote offers the
// release to now, as the writing replica does its own. Only an active deployment wakes: a write
// that leaves it active created, resumed or advanced it, while a pause, an abort or the
// completion (which would offer the release to the whole group again) opens nothing new. Most of
// the group's wake-ups it remembers are for devices connected elsewhere; they expire after
// wake.RememberFor.
func (w *Waker) wakeChanged(c store.DeploymentChange) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := w.store.DeploymentByID(ctx, c.TenantID, c.DeploymentID)
	if err != nil {
		w.log.Warn("reading a deployment another replica wrote, to wake its devices, failed", "deployment", c.DeploymentID, "err", err)
		return
	}
	if d.State == rollout.StateActive {
		w.WakeDeployment(d)
	}
}

// wakeDemoted wakes this replica's waiting devices that another replica's revocation demoted,
// so that they attest again at once rather than at the end of their wait; their wait answers
// reattest (the device API's wait).
func (w *Waker) wakeDemoted(tenantID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids, err := w.store.DemotedUntold(ctx, tenantID)
	if err != nil {
		w.log.Warn("listing the devices another replica demoted, to wake them, failed", "tenant", tenantID, "err", err)
		return
	}
	if n := w.hub.WakeWaiting(ids...); n > 0 {
		w.log.Info("woke devices another replica's revocation demoted", "tenant", tenantID, "woken", n)
	}
}
