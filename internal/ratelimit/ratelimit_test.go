package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	l := New(1, 3, 100)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("fourth event = %v, wait %v; want refused with a wait up to 1s", ok, wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := l.Allow("a", now.Add(time.Second)); !ok {
		t.Fatal("bucket did not refill")
	}
}

func TestBoundedKeys(t *testing.T) {
	l := New(1, 1, 10)
	now := time.Unix(1000, 0)
	for i := range 1000 {
		l.Allow(fmt.Sprint(i), now)
	}
	if n := len(l.current) + len(l.previous); n > 20 {
		t.Fatalf("tracks %d keys, want at most 20", n)
	}
	// A key that was just used keeps its (empty) bucket across a rotation.
	l.Allow("hot", now)
	for i := range 9 {
		l.Allow(fmt.Sprint("x", i), now)
	}
	if ok, _ := l.Allow("hot", now); ok {
		t.Fatal("rotation forgot a key in use")
	}
}

func TestNilAllowsEverything(t *testing.T) {
	var l *Limiter
	for range 100 {
		if ok, _ := l.Allow("a", time.Unix(0, 0)); !ok {
			t.Fatal("nil limiter refused")
		}
	}
}

func TestAllowN(t *testing.T) {
	l := New(10, 100, 1000)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if ok, _ := l.AllowN("dev", 100, now); !ok {
		t.Fatal("a full burst was refused")
	}
	// All or none: 50 events do not pass, and do not use up what refills.
	if ok, wait := l.AllowN("dev", 50, now.Add(time.Second)); ok || wait <= 0 {
		t.Fatalf("AllowN(50) after a second = %v, %v; want refused with a wait", ok, wait)
	}
	if ok, _ := l.AllowN("dev", 10, now.Add(time.Second)); !ok {
		t.Error("the 10 events refilled in a second were refused; the refused call consumed tokens")
	}
	if ok, wait := l.AllowN("other", 101, now); ok || wait != 10100*time.Millisecond {
		t.Errorf("AllowN above the burst = %v, %v; want refused, 10.1s", ok, wait)
	}
	var none *Limiter
	if ok, _ := none.AllowN("x", 1e6, now); !ok {
		t.Error("a nil limiter refused")
	}
}
