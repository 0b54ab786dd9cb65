// Package wake lets online devices hold a long-poll (/device/v1/wait) and be woken in seconds
// when something concerns them, typically a deployment phase that opens for their group. A hub
// is in-memory and per server replica: a device waits on the replica it is connected to. The
// replica that writes a deployment wakes the group's devices through its hub; on PostgreSQL the
// others hear of the write (store.ListenDeployments) and wake theirs. The server makes the hub;
// the API's device routes (which hold the long-poll) and internal/tasks (which wakes a
// deployment's devices) import it too.
package wake

import (
	"context"
	"errors"
	"sync"
	"time"
)

// GroupTag is the tag a device waits under: its group within its tenant and product, so that a
// deployment's phase can wake exactly its group's devices.
func GroupTag(tenantID, product, group string) string {
	return tenantID + "/" + product + "/" + group
}

// Errors returned by Wait.
var (
	// ErrReplaced is returned to a wait when the same device starts another one.
	ErrReplaced = errors.New("wake: replaced by a newer wait from the same device")
	// ErrFull is returned when the hub holds its maximum number of waiters.
	ErrFull = errors.New("wake: too many waiting devices")
)

type waiter struct {
	tag string
	ch  chan error
}

// Hub holds the waiting devices. The zero value is not usable; call NewHub.
type Hub struct {
	max        int
	maxPending int

	mu      sync.Mutex
	waiters map[string]*waiter
	// pending remembers, until the time it maps to, wake-ups for devices that were between two
	// waits, so that a wake sent while a device was checking in (or had not started its first
	// wait) is not lost. It is bounded by maxPending.
	pending map[string]time.Time
	now     func() time.Time
}

// RememberFor is how long a wake-up is kept for a device that was not waiting when it was sent:
// long enough for a check-in and the next wait to begin. After it, the device learns at its next
// wait timeout or check-in. The wake-ups of a deployment are remembered on every replica for
// all of the group's devices, most of them connected elsewhere, so they must not be kept for
// ever.
const RememberFor = 2 * time.Minute

// NewHub makes a hub for at most maxWaiters waiting devices, remembering at most as many
// wake-ups for devices that are between two waits.
func NewHub(maxWaiters int) *Hub {
	return &Hub{max: maxWaiters, maxPending: maxWaiters, waiters: map[string]*waiter{}, pending: map[string]time.Time{}, now: time.Now}
}

// Wait blocks until the device is woken (nil), its context ends (the context's error), a newer
// wait from the same device replaces it (ErrReplaced) or the hub is full (ErrFull). tag is
// what Wake selects on, such as the device's group ID.
func (h *Hub) Wait(ctx context.Context, deviceID, tag string) error {
	return h.WaitFor(ctx, deviceID, tag, 0)
}

// WaitFor is Wait with a timeout of its own (none when zero), after which it returns
// context.DeadlineExceeded. A long-poll waits with its request's context as ctx and the
// timeout here, not under a context derived from the request's for the deadline: that one, its
// place among the request context's children and its done channel would be held for the whole
// wait, some 0.5 KiB a waiting device (doc/benchmarks.md, "memory per held long-poll").
func (h *Hub) WaitFor(ctx context.Context, deviceID, tag string, timeout time.Duration) error {
	h.mu.Lock()
	if until, ok := h.pending[deviceID]; ok {
		delete(h.pending, deviceID)
		if h.now().Before(until) {
			h.mu.Unlock()
			return nil
		}
	}
	old := h.waiters[deviceID]
	if old == nil && len(h.waiters) >= h.max {
		h.mu.Unlock()
		return ErrFull
	}
	w := &waiter{tag: tag, ch: make(chan error, 1)}
	h.waiters[deviceID] = w
	h.mu.Unlock()
	if old != nil {
		old.ch <- ErrReplaced
	}
	if timeout > 0 {
		// A function timer, not a channel to select on: a blocked select holds a record
		// (sudog) per case, and a timer's channel is one more object; 0.2 KiB a waiting device.
		t := time.AfterFunc(timeout, func() { h.expire(deviceID, w) })
		defer t.Stop()
	}
	select {
	case err := <-w.ch:
		return err
	case <-ctx.Done():
		return h.leave(deviceID, w, ctx.Err())
	}
}

// expire ends a wait at its timeout: like a wake, it takes the waiter off the hub and, being
// the one that did, answers it, with context.DeadlineExceeded.
func (h *Hub) expire(deviceID string, w *waiter) {
	h.mu.Lock()
	mine := h.waiters[deviceID] == w
	if mine {
		delete(h.waiters, deviceID)
	}
	h.mu.Unlock()
	if mine {
		w.ch <- context.DeadlineExceeded
	}
}

// leave takes a wait that ended without a wake off the hub and returns err.
func (h *Hub) leave(deviceID string, w *waiter, err error) error {
	h.mu.Lock()
	if h.waiters[deviceID] == w {
		delete(h.waiters, deviceID)
	}
	h.mu.Unlock()
	// A wake that raced with the end of the wait is kept for the next wait.
	select {
	case werr := <-w.ch:
		if werr == nil {
			h.remember(deviceID)
		}
	default:
	}
	return err
}

func (h *Hub) remember(deviceID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	h.pruneLocked(now)
	h.rememberLocked(deviceID, now)
}

// rememberLocked keeps a wake-up for the device until RememberFor from now, unless the hub
// already remembers maxPending wake-ups (prune first).
func (h *Hub) rememberLocked(deviceID string, now time.Time) {
	if len(h.pending) < h.maxPending {
		h.pending[deviceID] = now.Add(RememberFor)
	}
}

// pruneLocked forgets the expired wake-ups when the hub remembers maxPending of them.
func (h *Hub) pruneLocked(now time.Time) {
	if len(h.pending) < h.maxPending {
		return
	}
	for id, until := range h.pending {
		if !now.Before(until) {
			delete(h.pending, id)
		}
	}
}

// Wake wakes the given devices. A device that is not waiting now is woken at its next wait if
// that begins within RememberFor. It returns how many waiting devices it woke.
func (h *Hub) Wake(deviceIDs ...string) int {
	h.mu.Lock()
	var woken []*waiter
	now := h.now()
	h.pruneLocked(now)
	for _, id := range deviceIDs {
		if w, ok := h.waiters[id]; ok {
			delete(h.waiters, id)
			woken = append(woken, w)
		} else {
			h.rememberLocked(id, now)
		}
	}
	h.mu.Unlock()
	for _, w := range woken {
		w.ch <- nil
	}
	return len(woken)
}

// WakeWaiting wakes those of the given devices that are waiting now, and remembers nothing for
// the others: for a wake-up whose reason the device's next wait learns by itself (a revocation
// that demoted its certificate: see the device API's wait). It returns how many it woke.
func (h *Hub) WakeWaiting(deviceIDs ...string) int {
	h.mu.Lock()
	var woken []*waiter
	for _, id := range deviceIDs {
		if w, ok := h.waiters[id]; ok {
			delete(h.waiters, id)
			woken = append(woken, w)
		}
	}
	h.mu.Unlock()
	for _, w := range woken {
		w.ch <- nil
	}
	return len(woken)
}

// WakeTagged wakes every waiting device with the tag for which match returns true (nil matches
// all), such as the devices of a group whose phase just opened. Devices not waiting now are not
// remembered: they learn of the change at their next check-in. It returns how many it woke.
func (h *Hub) WakeTagged(tag string, match func(deviceID string) bool) int {
	h.mu.Lock()
	var woken []*waiter
	for id, w := range h.waiters {
		if w.tag == tag && (match == nil || match(id)) {
			delete(h.waiters, id)
			woken = append(woken, w)
		}
	}
	h.mu.Unlock()
	for _, w := range woken {
		w.ch <- nil
	}
	return len(woken)
}

// Waiting is the number of devices waiting now.
func (h *Hub) Waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters)
}
