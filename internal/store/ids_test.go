package store

import (
	"strings"
	"testing"
	"time"
)

// TestOrderedIDsSort: IDs made at later times sort after earlier ones as text (how SQLite and
// PostgreSQL compare them), have NewID's length and alphabet, and differ within one microsecond.
func TestOrderedIDsSort(t *testing.T) {
	at := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	prev := newOrderedID("ins", at)
	if len(prev) != len(NewID("ins")) {
		t.Fatalf("len(%q) = %d, want NewID's %d", prev, len(prev), len(NewID("ins")))
	}
	for i := range 10000 {
		// Steps from a microsecond to hours, so that every character's position changes.
		at = at.Add(time.Duration(1+i*i*i) * time.Microsecond)
		id := newOrderedID("ins", at)
		if id <= prev {
			t.Fatalf("%q (at %v) sorts before or at the earlier %q", id, at, prev)
		}
		if strings.Trim(id[len("ins_"):], "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("%q leaves NewID's alphabet", id)
		}
		prev = id
	}
	if a, b := newOrderedID("att", at), newOrderedID("att", at); a == b {
		t.Errorf("two IDs of one microsecond are the same: %q", a)
	}
}
