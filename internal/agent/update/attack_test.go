package update

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/delta"
	"github.com/rampartsec/rampart/internal/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Each test below performs one of TUF's attacks (plus Uptane's director
// compromise and a tampered delta) against a running loopback server and a
// real updater that has 1.0.0 committed, and checks that the attack is
// refused, that the device stays on 1.0.0 and that it still boots a
// verified slot.

// attacked sets up a device committed on 1.0.0 with 1.1.0 signed.
func attacked(t *testing.T) (*world, *device, release, release) {
	t.Helper()
	w := newWorld(t)
	r1, r2 := twoReleases(w)
	d := newDevice(t)
	w.assign(r1)
	if out, err := w.updater(t, d, nil).RunOnce(context.Background()); err != nil || !out.Committed {
		t.Fatalf("install 1.0.0: %+v, %v", out, err)
	}
	d.reports.reset()
	return w, d, r1, r2
}

// stillOn checks that the device kept release and boots it verified.
func stillOn(t *testing.T, d *device, release string) {
	t.Helper()
	if got := committedRelease(t, d); got != release {
		t.Errorf("committed release = %q, want %q", got, release)
	}
	b, err := booted(t, d)
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	if b.Trial || b.Info.Release != release {
		t.Errorf("booted %+v, want committed %s", b, release)
	}
}

func TestAttackArbitrarySoftware(t *testing.T) {
	w, d, _, _ := attacked(t)
	// The attacker has no key: it forges image-repository targets and
	// director metadata naming its own image, signed with its own keys.
	evil := []byte("#!/bin/sh\nrm -rf /\n")
	im := imageOf("rootfs", "9.9.9", 99, evil)
	forged := w.forge(t, metadata.TARGETS)
	ks := &tuf.KeySet{Keys: []*tuf.PrivateKey{forged}}
	payload, err := tuf.BuildTargets(w.repo.Targets(), []tuf.Image{im}, nil, w.now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tuf.SignTargets(w.repo.Root(), payload, ks); !errors.Is(err, tuf.ErrThreshold) {
		t.Fatalf("forged key signed for the real root: %v", err)
	}
	w.mu.Lock()
	w.blobs[tuf.ImagePath(im.SHA256)] = evil
	w.mu.Unlock()
	// Director metadata from a director key the device does not trust.
	droot, err := tuf.NewDirectorRoot(&tuf.KeySet{Keys: []*tuf.PrivateKey{w.forge(t, metadata.ROOT)}}, 1, forged.Public(), w.now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := tuf.NewDirector([][]byte{droot}, &tuf.PrivateKey{Role: tuf.RoleDirector, Private: forged.Private}, tuf.DefaultExpiry())
	if err != nil {
		t.Fatal(err)
	}
	f, err := rogue.Issue(tuf.Assignment{DeviceID: w.deviceID, Version: 100, Release: "9.9.9", Images: []tuf.Image{im}}, w.now)
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.dirFiles = maps.Clone(w.dirFiles)
	maps.Copy(w.dirFiles, f.Files())
	w.mu.Unlock()

	_, err = w.updater(t, d, nil).RunOnce(context.Background())
	if !errors.Is(err, ErrMetadata) {
		t.Fatalf("RunOnce: %v, want ErrMetadata", err)
	}
	stillOn(t, d, "1.0.0")
}

func TestAttackRollback(t *testing.T) {
	w, d, r1, r2 := attacked(t)
	oldRepo := maps.Clone(w.repoFiles)
	oldDirector := maps.Clone(w.dirFiles)
	// Honest step: the device sees newer metadata (a third release).
	r3 := w.addRelease("1.2.0", 1, map[string][]byte{"rootfs": edit(r2.content["rootfs"], 9), "config": r1.content["config"]}, map[string]string{"config": "1.0.0"})
	_ = r3
	w.assign(r1) // director version goes up, still naming 1.0.0: nothing to do
	if _, err := w.updater(t, d, nil).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		repo map[string][]byte
		dir  map[string][]byte
	}{
		{"old image repository metadata", oldRepo, w.dirFiles},
		{"old director metadata", w.repoFiles, oldDirector},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w.mu.Lock()
			w.repoFiles, w.dirFiles = tc.repo, tc.dir
			w.mu.Unlock()
			_, err := w.updater(t, d, nil).RunOnce(context.Background())
			if !errors.Is(err, ErrMetadata) {
				t.Fatalf("RunOnce: %v, want ErrMetadata", err)
			}
			var bad *metadata.ErrBadVersionNumber
			if !errors.As(err, &bad) {
				t.Errorf("error %v is not a version rollback refusal", err)
			}
			stillOn(t, d, "1.0.0")
		})
	}
}

func TestAttackIndefiniteFreeze(t *testing.T) {
	w, d, _, r2 := attacked(t)
	// The server signs 1.1.0 for the device, but a mirror freezes what the
	// device sees at today's metadata and keeps serving it; two days
	// later the timestamp has expired.
	later := func() time.Time { return time.Now().Add(48 * time.Hour) }
	w.assign(r2)
	_, err := w.updater(t, d, nil, func(c *Config) { c.Now = later }).RunOnce(context.Background())
	if !errors.Is(err, ErrMetadata) {
		t.Fatalf("RunOnce: %v, want ErrMetadata", err)
	}
	var exp *metadata.ErrExpiredMetadata
	if !errors.As(err, &exp) {
		t.Errorf("error %v is not an expiry refusal", err)
	}
	stillOn(t, d, "1.0.0")
}

func TestAttackMixAndMatch(t *testing.T) {
	t.Run("snapshot from another version", func(t *testing.T) {
		w, d, r1, r2 := attacked(t)
		oldSnapshot := w.repoFiles["snapshot.json"]
		w.addRelease("1.2.0", 1, map[string][]byte{"rootfs": edit(r2.content["rootfs"], 4), "config": r1.content["config"]}, map[string]string{"config": "1.0.0"})
		w.assign(r2)
		// New timestamp, old snapshot served under the new version's name.
		w.mu.Lock()
		files := maps.Clone(w.repoFiles)
		for name := range files {
			if strings.HasSuffix(name, ".snapshot.json") {
				files[name] = oldSnapshot
			}
		}
		w.repoFiles = files
		w.mu.Unlock()
		_, err := w.updater(t, d, nil).RunOnce(context.Background())
		if !errors.Is(err, ErrMetadata) {
			t.Fatalf("RunOnce: %v, want ErrMetadata", err)
		}
		stillOn(t, d, "1.0.0")
	})
	t.Run("director from another repository state", func(t *testing.T) {
		w, d, r1, r2 := attacked(t)
		// The device sees the repository as of before 1.2.0 was signed,
		// while the director names 1.2.0's image.
		frozen := maps.Clone(w.repoFiles)
		r3 := w.addRelease("1.2.0", 1, map[string][]byte{"rootfs": edit(r2.content["rootfs"], 5), "config": r1.content["config"]}, map[string]string{"config": "1.0.0"})
		w.assign(r3)
		w.mu.Lock()
		w.repoFiles = frozen
		w.mu.Unlock()
		_, err := w.updater(t, d, nil).RunOnce(context.Background())
		if !errors.Is(err, ErrDirectorMismatch) {
			t.Fatalf("RunOnce: %v, want ErrDirectorMismatch", err)
		}
		stillOn(t, d, "1.0.0")
	})
}

func TestAttackEndlessData(t *testing.T) {
	tests := []struct {
		name  string
		paths func(r2 release) []string
	}{
		{"image and delta", func(r2 release) []string {
			return []string{"/repo/targets/" + tuf.ImagePath(r2.images["rootfs"].SHA256), "/repo/targets/deltas/"}
		}},
		{"delta", func(r2 release) []string { return []string{"/repo/targets/deltas/"} }},
		{"timestamp", func(release) []string { return []string{"/repo/metadata/timestamp.json"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, d, _, r2 := attacked(t)
			prefixes := tc.paths(r2)
			w.setIntercept(func(rw http.ResponseWriter, r *http.Request) bool {
				if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(r.URL.Path, p) }) {
					return false
				}
				endless(rw, r)
				return true
			})
			w.assign(r2)
			_, err := w.updater(t, d, nil).RunOnce(context.Background())
			if tc.name == "delta" {
				// An endless delta is dropped for the full image.
				if err != nil {
					t.Fatalf("RunOnce: %v, want fallback to the full image", err)
				}
				stillOn(t, d, "1.1.0")
				return
			}
			if err == nil {
				t.Fatal("RunOnce accepted endless data")
			}
			if !errors.Is(err, ErrTooLarge) && !strings.Contains(err.Error(), ErrTooLarge.Error()) {
				t.Errorf("error %v is not a size refusal", err)
			}
			stillOn(t, d, "1.0.0")
		})
	}
}

// endless streams zeros until the client goes away.
func endless(rw http.ResponseWriter, r *http.Request) {
	rw.WriteHeader(http.StatusOK)
	buf := make([]byte, 32<<10)
	for i := 0; i < 1<<14; i++ { // at most 512 MiB, far beyond any limit
		if _, err := rw.Write(buf); err != nil || r.Context().Err() != nil {
			return
		}
	}
}

func TestAttackSlowRetrieval(t *testing.T) {
	w, d, _, r2 := attacked(t)
	path := "/repo/targets/" + tuf.ImagePath(r2.images["rootfs"].SHA256)
	w.setIntercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != path && !strings.HasPrefix(r.URL.Path, "/repo/targets/deltas/") {
			return false
		}
		rw.WriteHeader(http.StatusOK)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for range 500 { // ten seconds at most
			select {
			case <-r.Context().Done():
				return true
			case <-t.C:
				rw.Write([]byte{0})
				rw.(http.Flusher).Flush()
			}
		}
		return true
	})
	w.assign(r2)
	limits := func(c *Config) { c.Limits = Limits{MinRate: 64 << 10, RateWindow: 200 * time.Millisecond} }
	_, err := w.updater(t, d, nil, limits).RunOnce(context.Background())
	if !errors.Is(err, ErrSlowRetrieval) {
		t.Fatalf("RunOnce: %v, want ErrSlowRetrieval", err)
	}
	stillOn(t, d, "1.0.0")
}

// TestAttackSlowMetadata serves the director's timestamp.json fast enough to pass the minimum
// rate but never whole (an endless stream of spaces): the metadata deadline refuses it as slow
// retrieval, where before only its length limit ended the transfer.
func TestAttackSlowMetadata(t *testing.T) {
	w, d, _, r2 := attacked(t)
	w.setIntercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/timestamp.json") || !strings.HasPrefix(r.URL.Path, "/director/") {
			return false
		}
		rw.WriteHeader(http.StatusOK)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for range 500 { // ten seconds at most
			select {
			case <-r.Context().Done():
				return true
			case <-t.C:
				rw.Write(bytes.Repeat([]byte{' '}, 40)) // 2 KB/s
				rw.(http.Flusher).Flush()
			}
		}
		return true
	})
	w.assign(r2)
	limits := func(c *Config) {
		c.Limits = Limits{MinRate: 1 << 10, RateWindow: 200 * time.Millisecond, MetadataDeadline: 500 * time.Millisecond}
	}
	_, err := w.updater(t, d, nil, limits).RunOnce(context.Background())
	if !errors.Is(err, ErrSlowRetrieval) || !errors.Is(err, ErrMetadata) {
		t.Fatalf("RunOnce: %v, want refused metadata (ErrSlowRetrieval)", err)
	}
	stillOn(t, d, "1.0.0")
}

func TestAttackMaliciousMirror(t *testing.T) {
	w, d, _, r2 := attacked(t)
	// The mirror serves other bytes of the right length for the image and
	// the delta.
	w.setIntercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/repo/targets/") {
			return false
		}
		w.mu.Lock()
		b := append([]byte(nil), w.blobs[strings.TrimPrefix(r.URL.Path, "/repo/targets/")]...)
		w.mu.Unlock()
		for i := range b {
			b[i] ^= 0x5a
		}
		rw.Write(b)
		return true
	})
	w.assign(r2)
	_, err := w.updater(t, d, nil).RunOnce(context.Background())
	if !errors.Is(err, ErrVerification) {
		t.Fatalf("RunOnce: %v, want ErrVerification", err)
	}
	stillOn(t, d, "1.0.0")
}

func TestAttackCompromisedDirectorKey(t *testing.T) {
	evil := []byte("backdoored rootfs")
	tests := []struct {
		name   string
		images func(w *world, r1, r2 release) []tuf.Image
		want   error
	}{
		{"names an unsigned image", func(w *world, r1, r2 release) []tuf.Image {
			w.mu.Lock()
			w.blobs[tuf.ImagePath(imageOf("rootfs", "2.0.0", 9, evil).SHA256)] = evil
			w.mu.Unlock()
			return []tuf.Image{imageOf("rootfs", "2.0.0", 9, evil)}
		}, ErrDirectorMismatch},
		{"changes a signed image's length", func(w *world, r1, r2 release) []tuf.Image {
			im := r2.images["rootfs"]
			im.Length += 10
			return []tuf.Image{im}
		}, ErrDirectorMismatch},
		{"raises a security version", func(w *world, r1, r2 release) []tuf.Image {
			im := r2.images["rootfs"]
			im.SecurityVersion = 50
			return []tuf.Image{im}
		}, ErrDirectorMismatch},
		{"pushes an old signed release", func(w *world, r1, r2 release) []tuf.Image {
			old := w.addRelease("0.9.0", 1, map[string][]byte{"rootfs": image(77, 8<<10)}, nil)
			return []tuf.Image{old.images["rootfs"]}
		}, ErrRollback},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, d, r1, r2 := attacked(t)
			// The attacker holds the online director key, and nothing else.
			w.assignImages("evil", tc.images(w, r1, r2))
			_, err := w.updater(t, d, nil).RunOnce(context.Background())
			if !errors.Is(err, tc.want) {
				t.Fatalf("RunOnce: %v, want %v", err, tc.want)
			}
			stillOn(t, d, "1.0.0")
		})
	}
}

func TestAttackTamperedDelta(t *testing.T) {
	w, d, _, r2 := attacked(t)
	fullPath := "/repo/targets/" + tuf.ImagePath(r2.images["rootfs"].SHA256)
	w.setIntercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/repo/targets/deltas/") {
			return false
		}
		w.mu.Lock()
		b := append([]byte(nil), w.blobs[strings.TrimPrefix(r.URL.Path, "/repo/targets/")]...)
		w.mu.Unlock()
		b[len(b)/2] ^= 0xff
		rw.Write(b)
		return true
	})
	w.assign(r2)
	out, err := w.updater(t, d, nil).RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v, want fallback to the full image", err)
	}
	if len(out.Delta) != 0 {
		t.Errorf("installed from a tampered delta: %+v", out)
	}
	full := false
	for _, req := range w.log() {
		full = full || strings.HasPrefix(req, "GET "+fullPath)
	}
	if !full {
		t.Error("the full image was not downloaded after the delta failed")
	}
	stillOn(t, d, "1.1.0")
}

// beginInstallOf assigns rel to the device and begins an install on its updater, as the
// updater does before it applies a patch: the updater, the slots' state and the slot begun.
func beginInstallOf(t *testing.T, w *world, d *device, rel release) (*Updater, SlotState, string) {
	t.Helper()
	w.assign(rel)
	u := w.updater(t, d, nil)
	st, err := u.cfg.Slots.State()
	if err != nil {
		t.Fatal(err)
	}
	slot, err := u.cfg.Slots.BeginInstall()
	if err != nil {
		t.Fatal(err)
	}
	return u, st, slot
}

// TestWellFormedDeltaOfOtherBytes: a valid patch against the committed base that produces
// other bytes than the signed image (delta.Apply leaves the hash to the slot writer, which
// checks every byte it writes) is refused with ErrVerification, and the trial is never switched to.
func TestWellFormedDeltaOfOtherBytes(t *testing.T) {
	w, d, r1, r2 := attacked(t)
	u, st, slot := beginInstallOf(t, w, d, r2)
	base := r1.content["rootfs"]
	other := edit(r2.content["rootfs"], 77)[:len(r2.content["rootfs"])]
	var patch bytes.Buffer
	if err := delta.Build(context.Background(), &patch, base, bytes.NewReader(other), int64(len(other)), delta.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	path := u.staging("other.delta")
	if err := writeFileAtomic(OSFS{}, path, patch.Bytes()); err != nil {
		t.Fatal(err)
	}
	want := ComponentImage{Version: "1.1.0", SecurityVersion: 1, SHA256: r2.images["rootfs"].SHA256, Length: r2.images["rootfs"].Length}
	err := u.applyDelta(context.Background(), slot, "rootfs", want, st.Committed, st.Slots[st.Committed].Components["rootfs"], path)
	if !errors.Is(err, ErrVerification) {
		t.Fatalf("applyDelta of other bytes: %v, want ErrVerification", err)
	}
	stillOn(t, d, "1.0.0")
}

// TestTamperedDeltaPassedToApply covers the defence behind the signed hash:
// a patch file that reaches the apply step but produces other bytes is
// caught before the slot is trusted, and the full image is used.
func TestTamperedDeltaPassedToApply(t *testing.T) {
	w, d, _, r2 := attacked(t)
	u, st, slot := beginInstallOf(t, w, d, r2)
	patch := u.staging("bogus.delta")
	if err := writeFileAtomic(OSFS{}, patch, []byte("\x28\xb5\x2f\xfdnot a real frame")); err != nil {
		t.Fatal(err)
	}
	want := ComponentImage{Version: "1.1.0", SecurityVersion: 1, SHA256: r2.images["rootfs"].SHA256, Length: r2.images["rootfs"].Length}
	if err := u.applyDelta(context.Background(), slot, "rootfs", want, st.Committed, st.Slots[st.Committed].Components["rootfs"], patch); err == nil {
		t.Fatal("applyDelta accepted a bogus patch")
	}
	stillOn(t, d, "1.0.0")
	// The next run overwrites the half-written slot and commits 1.1.0.
	if out, err := w.updater(t, d, nil).RunOnce(context.Background()); err != nil || !out.Committed {
		t.Fatalf("RunOnce: %+v, %v", out, err)
	}
	stillOn(t, d, "1.1.0")
}
