package failure

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGroupLifecycle(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f := Analyze(rep(nil))
	g := NewGroup(f, "1.0.0", t0)
	if g.Signature != f.Signature() || g.Count != 1 || !g.NewIn("1.0.0") || g.NewIn("1.1.0") || g.Status != GroupOpen {
		t.Fatalf("new group %+v", g)
	}
	steps := []struct {
		name     string
		release  string
		at       time.Duration
		resolve  bool
		wantMark Mark
		want     GroupStatus
	}{
		{"same release", "1.0.0", time.Hour, false, MarkKnown, GroupOpen},
		{"carried into the next release", "1.1.0", 2 * time.Hour, false, MarkKnown, GroupOpen},
		{"resolved", "", 3 * time.Hour, true, "", GroupResolved},
		{"old device on a known release", "1.0.0", 4 * time.Hour, false, MarkKnown, GroupResolved},
		{"came back on the fixed release", "1.2.0", 5 * time.Hour, false, MarkRegressed, GroupOpen},
		{"known again after reopening", "1.2.0", 6 * time.Hour, false, MarkKnown, GroupOpen},
	}
	for _, s := range steps {
		if s.resolve {
			var err error
			if g, err = g.Resolve(t0.Add(s.at)); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		} else {
			var m Mark
			g, m = g.Observe(s.release, t0.Add(s.at))
			if m != s.wantMark {
				t.Errorf("%s: mark %s, want %s", s.name, m, s.wantMark)
			}
		}
		if g.Status != s.want {
			t.Errorf("%s: status %s, want %s", s.name, g.Status, s.want)
		}
	}
	want := Group{
		Signature: f.Signature(), Fault: f, Status: GroupOpen, Count: 6, FirstSeen: t0, LastSeen: t0.Add(6 * time.Hour),
		FirstRelease: "1.0.0", Releases: []string{"1.0.0", "1.1.0", "1.2.0"},
		ResolvedAt: t0.Add(3 * time.Hour), ResolvedReleases: []string{"1.0.0", "1.1.0"},
		RegressedIn: "1.2.0", RegressedAt: t0.Add(5 * time.Hour),
	}
	if diff := cmp.Diff(g, want); diff != "" {
		t.Errorf("group (-got +want):\n%s", diff)
	}
	if _, err := g.Resolve(t0); err != nil {
		t.Fatal(err)
	}
	r, _ := g.Resolve(t0)
	if _, err := r.Resolve(t0); !errors.Is(err, ErrAlreadyResolved) {
		t.Errorf("second resolve: %v, want ErrAlreadyResolved", err)
	}
}

func TestObserveDoesNotAliasReleases(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	g := NewGroup(Analyze(rep(nil)), "1.0.0", t0)
	g.Releases = append(make([]string, 0, 4), "1.0.0")
	a, _ := g.Observe("0.9.0", t0)
	b, _ := g.Observe("0.8.0", t0)
	if diff := cmp.Diff(a.Releases, []string{"0.9.0", "1.0.0"}); diff != "" {
		t.Errorf("a (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(b.Releases, []string{"0.8.0", "1.0.0"}); diff != "" {
		t.Errorf("b (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(g.Releases, []string{"1.0.0"}); diff != "" {
		t.Errorf("original changed (-got +want):\n%s", diff)
	}
}
