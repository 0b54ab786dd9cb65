// Package ratelimit keeps one token bucket per key (a device ID, a client address) with a
// bounded memory: when the number of keys passes the cap, the least recently refreshed half is
// forgotten, which at worst gives a forgotten key a fresh bucket. The API imports it.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter limits events per key.
type Limiter struct {
	every   rate.Limit
	burst   int
	maxKeys int

	mu       sync.Mutex
	current  map[string]*rate.Limiter
	previous map[string]*rate.Limiter
}

// New allows perSecond events per key on average, with bursts of burst, tracking at most
// maxKeys keys at once (twice that at the moment of a rotation).
func New(perSecond float64, burst, maxKeys int) *Limiter {
	return &Limiter{every: rate.Limit(perSecond), burst: burst, maxKeys: maxKeys,
		current: map[string]*rate.Limiter{}, previous: map[string]*rate.Limiter{}}
}

// Allow reports whether one event for key may happen at now, and if not, how long to wait. A nil
// Limiter allows everything.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	return l.AllowN(key, 1, now)
}

// AllowN reports whether n events for key may happen together at now (all or none), and if
// not, how long to wait; n above the burst never passes. A nil Limiter allows everything.
func (l *Limiter) AllowN(key string, n int, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	lim, ok := l.current[key]
	if !ok {
		if lim, ok = l.previous[key]; ok {
			delete(l.previous, key)
		} else {
			lim = rate.NewLimiter(l.every, l.burst)
		}
		if len(l.current) >= l.maxKeys {
			l.previous, l.current = l.current, map[string]*rate.Limiter{}
		}
		l.current[key] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, n)
	if !r.OK() {
		// More than the burst: it never passes; say how long n events take at the rate.
		return false, time.Duration(float64(n) / float64(l.every) * float64(time.Second))
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
