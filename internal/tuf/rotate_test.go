package tuf

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// rotationFixture is a 2-of-2 image root and its director root.
func rotationFixture(t *testing.T) (ks *KeySet, image, director []byte, now time.Time) {
	t.Helper()
	now = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ks, err := GenerateKeySet(2)
	if err != nil {
		t.Fatal(err)
	}
	online, err := GenerateOnlineKeys()
	if err != nil {
		t.Fatal(err)
	}
	if image, err = NewRoot(ks, 2, online.Public(), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if director, err = NewDirectorRoot(ks, 2, online.Director.Public(), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return ks, image, director, now
}

func publicIDs(keys []*metadata.Key) []string {
	var out []string
	for _, k := range keys {
		id, err := k.ID()
		if err != nil {
			id = "error: " + err.Error()
		}
		out = append(out, id)
	}
	return out
}

func TestPlanRotation(t *testing.T) {
	ks, image, director, now := rotationFixture(t)
	rootKey, targetsKey := ks.Role(metadata.ROOT)[0], ks.Role(metadata.TARGETS)[0]
	exp := now.Add(24 * time.Hour)

	t.Run("root key: both roots change", func(t *testing.T) {
		p, err := PlanRotation(image, Rotation{Revoke: []string{rootKey.ID()[:12]}, AddRoot: 1, RootThreshold: 2, TargetsThreshold: 1, Expires: exp})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Fresh.Keys) != 1 || p.Fresh.Keys[0].Role != metadata.ROOT {
			t.Fatalf("fresh keys %+v, want one root key", p.Fresh.Keys)
		}
		fresh := p.Fresh.Keys[0].ID()
		if diff := cmp.Diff(p.Revoked, []string{rootKey.ID()}); diff != "" {
			t.Errorf("Revoked (-got +want):\n%s", diff)
		}
		for name, c := range map[string]RootChange{"image": p.Image, "director": p.Director} {
			if diff := cmp.Diff(c.Revoke, map[string][]string{metadata.ROOT: {rootKey.ID()}}); diff != "" {
				t.Errorf("%s Revoke (-got +want):\n%s", name, diff)
			}
			if diff := cmp.Diff(publicIDs(c.Add[metadata.ROOT]), []string{fresh}); diff != "" {
				t.Errorf("%s Add (-got +want):\n%s", name, diff)
			}
			if !c.Expires.Equal(exp) {
				t.Errorf("%s Expires %v, want %v", name, c.Expires, exp)
			}
		}
		if diff := cmp.Diff(p.Image.Threshold, map[string]int{metadata.ROOT: 2, metadata.TARGETS: 1}); diff != "" {
			t.Errorf("image Threshold (-got +want):\n%s", diff)
		}
		// The director root's targets role is the online director key's: never the offline one's.
		if diff := cmp.Diff(p.Director.Threshold, map[string]int{metadata.ROOT: 2}); diff != "" {
			t.Errorf("director Threshold (-got +want):\n%s", diff)
		}
		if !p.RotatesDirector() {
			t.Error("RotatesDirector = false for a root key change")
		}

		nextImage, nextDirector, err := p.Sign(image, director, ks)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyRootUpdate(image, nextImage, now); err != nil {
			t.Errorf("next image root: %v", err)
		}
		if err := VerifyRootUpdate(director, nextDirector, now); err != nil {
			t.Errorf("next director root: %v", err)
		}
		got, err := SummarizeRoot(nextImage)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, RootSummary{Version: 2, RootKeys: 2, RootThreshold: 2, TargetsKeys: 2, TargetsThreshold: 1}); diff != "" {
			t.Errorf("SummarizeRoot (-got +want):\n%s", diff)
		}
	})

	t.Run("targets key: the director root stays", func(t *testing.T) {
		p, err := PlanRotation(image, Rotation{Revoke: []string{targetsKey.ID()}, AddTargets: 1, Expires: exp})
		if err != nil {
			t.Fatal(err)
		}
		if p.RotatesDirector() {
			t.Errorf("RotatesDirector = true for a targets key change: %+v", p.Director)
		}
		if diff := cmp.Diff(p.Image.Revoke, map[string][]string{metadata.TARGETS: {targetsKey.ID()}}); diff != "" {
			t.Errorf("image Revoke (-got +want):\n%s", diff)
		}
		nextImage, nextDirector, err := p.Sign(image, director, ks)
		if err != nil {
			t.Fatal(err)
		}
		if nextDirector != nil {
			t.Error("a director root was signed for a targets key change")
		}
		if s, err := SummarizeRoot(nextImage); err != nil || s.TargetsKeys != 2 || s.Version != 2 {
			t.Errorf("SummarizeRoot = %+v, %v; want version 2 with 2 targets keys", s, err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			root []byte
			r    Rotation
			want string
		}{
			{"unknown prefix", image, Rotation{Revoke: []string{"ffffffffffff"}}, "no root or targets key has an ID starting with ffffffffffff"},
			{"empty prefix", image, Rotation{Revoke: []string{""}}, "no root or targets key has an ID starting with"},
			{"malformed root", []byte("{}"), Rotation{AddRoot: 1}, "is not TUF root metadata"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := PlanRotation(tc.root, tc.r)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("PlanRotation error %v, want one containing %q", err, tc.want)
				}
			})
		}
		// A threshold above the keys is caught when signing, for both roots.
		p, err := PlanRotation(image, Rotation{TargetsThreshold: 5, Expires: exp})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.Sign(image, director, ks); err == nil || !strings.Contains(err.Error(), "threshold 5 with 2 keys") {
			t.Fatalf("Sign error %v, want the threshold refused", err)
		}
	})
}

func TestRotationEmpty(t *testing.T) {
	if !(Rotation{Expires: time.Now()}).Empty() {
		t.Error("a rotation with only an expiry is not empty")
	}
	for _, r := range []Rotation{{Revoke: []string{"ab"}}, {AddRoot: 1}, {AddTargets: 1}, {RootThreshold: 1}, {TargetsThreshold: 1}} {
		if r.Empty() {
			t.Errorf("%+v is empty", r)
		}
	}
}

// TestSummarizeRootMalformed: the rotate verb once dropped this error and read a nil root.
func TestSummarizeRootMalformed(t *testing.T) {
	if _, err := SummarizeRoot([]byte("not json")); !errors.Is(err, ErrVerify) {
		t.Fatalf("SummarizeRoot error %v, want ErrVerify", err)
	}
}
