package update

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The agent keeps one Updater between check-ins, and with it the metadata the last check-in
// verified. These tests run every check-in through the same Updater.

// keptUpdater is a device committed on 1.0.0 whose Updater is kept, with a clock the test moves.
func keptUpdater(t *testing.T) (*world, *device, *Updater, *time.Duration, release, release) {
	t.Helper()
	w := newWorld(t)
	r1, r2 := twoReleases(w)
	d := newDevice(t)
	w.assign(r1)
	shift := new(time.Duration)
	u := w.updater(t, d, nil, func(c *Config) { c.Now = func() time.Time { return time.Now().Add(*shift) } })
	if out, err := u.RunOnce(context.Background()); err != nil || !out.Committed {
		t.Fatalf("install 1.0.0: %+v, %v", out, err)
	}
	d.reports.reset()
	return w, d, u, shift, r1, r2
}

// metadataFiles returns each metadata file under the state dir with its modification time.
func metadataFiles(t *testing.T, d *device) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for _, name := range []string{"repo", "director"} {
		ents, err := os.ReadDir(filepath.Join(d.stateDir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && !e.IsDir() {
				out[name+"/"+e.Name()] = fi.ModTime()
			}
		}
	}
	return out
}

func TestIdleCheckInReusesVerifiedMetadata(t *testing.T) {
	w, d, u, _, _, r2 := keptUpdater(t)
	before := metadataFiles(t, d)
	if len(before) < 8 {
		t.Fatalf("metadata files after the install: %v", before)
	}
	time.Sleep(20 * time.Millisecond) // a rewrite would change a modification time
	n := len(w.log())
	out, err := u.RunOnce(context.Background())
	if err != nil || out.Installed || out.Release != "1.0.0" {
		t.Fatalf("idle check-in: %+v, %v", out, err)
	}
	// Each repository: the next root (not found) and the timestamp; nothing else, and no file
	// written.
	var got []string
	for _, r := range w.log()[n:] {
		got = append(got, strings.TrimSpace(r[strings.LastIndex(r, "/")+1:]))
	}
	if want := []string{"2.root.json", "timestamp.json", "2.root.json", "timestamp.json"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("idle check-in fetched %v, want %v", got, want)
	}
	if after := metadataFiles(t, d); !maps.Equal(after, before) {
		t.Errorf("idle check-in rewrote metadata:\nbefore %v\nafter  %v", before, after)
	}

	// A new Updater (after a reboot) verifies everything again from disk, and writes nothing
	// either: the root it read from root.json is not written back.
	if out, err := w.updater(t, d, nil).RunOnce(context.Background()); err != nil || out.Installed {
		t.Fatalf("check-in after a reboot: %+v, %v", out, err)
	}
	if after := metadataFiles(t, d); !maps.Equal(after, before) {
		t.Errorf("check-in after a reboot rewrote metadata:\nbefore %v\nafter  %v", before, after)
	}

	// A new assignment reaches the same Updater.
	w.assign(r2)
	out, err = u.RunOnce(context.Background())
	if err != nil || !out.Committed || out.Release != "1.1.0" {
		t.Fatalf("install 1.1.0: %+v, %v", out, err)
	}
	stillOn(t, d, "1.1.0")
}

func TestKeptMetadataFreeze(t *testing.T) {
	// A mirror freezes what the device sees: the bytes do not change, but two days later the
	// kept timestamp has expired and is refused.
	_, d, u, shift, _, _ := keptUpdater(t)
	if _, err := u.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	*shift = 48 * time.Hour
	_, err := u.RunOnce(context.Background())
	var exp *metadata.ErrExpiredMetadata
	if !errors.Is(err, ErrMetadata) || !errors.As(err, &exp) {
		t.Fatalf("RunOnce two days later: %v, want an expiry refusal", err)
	}
	stillOn(t, d, "1.0.0")
}

func TestKeptMetadataRollback(t *testing.T) {
	w, d, u, _, r1, r2 := keptUpdater(t)
	oldRepo := maps.Clone(w.repoFiles)
	oldDirector := maps.Clone(w.dirFiles)
	w.addRelease("1.2.0", 1, map[string][]byte{"rootfs": edit(r2.content["rootfs"], 9), "config": r1.content["config"]}, map[string]string{"config": "1.0.0"})
	w.assign(r1)
	if _, err := u.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		repo, dir map[string][]byte
	}{
		{"old image repository metadata", oldRepo, w.dirFiles},
		{"old director metadata", w.repoFiles, oldDirector},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.mu.Lock()
			w.repoFiles, w.dirFiles = tc.repo, tc.dir
			w.mu.Unlock()
			_, err := u.RunOnce(context.Background())
			var bad *metadata.ErrBadVersionNumber
			if !errors.Is(err, ErrMetadata) || !errors.As(err, &bad) {
				t.Fatalf("RunOnce: %v, want a version rollback refusal", err)
			}
			stillOn(t, d, "1.0.0")
		})
	}
}

func TestKeptMetadataRootRotation(t *testing.T) {
	// The image repository rotates its targets key: the kept Updater finds root 2, trusts the
	// new key, and refuses targets signed by the revoked one.
	w, d, u, _, r1, r2 := keptUpdater(t)
	revoked := w.ks.Role(metadata.TARGETS)[0]
	newKey, err := tuf.GenerateKey(metadata.TARGETS)
	if err != nil {
		t.Fatal(err)
	}
	rotate := func(ch tuf.RootChange, ks *tuf.KeySet) {
		ch.Expires = w.now.Add(tuf.DefaultExpiry().Root)
		next, err := tuf.RotateRoot(w.repo.Root(), ch, ks)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.repo.AddRoot(next, w.now); err != nil {
			t.Fatal(err)
		}
	}
	all := &tuf.KeySet{Keys: append(append([]*tuf.PrivateKey(nil), w.ks.Keys...), newKey)}
	rotate(tuf.RootChange{Add: map[string][]*metadata.Key{metadata.TARGETS: {newKey.Public()}}}, all)
	rotate(tuf.RootChange{Revoke: map[string][]string{metadata.TARGETS: {revoked.ID()}}}, all)
	// The targets the device holds were signed by the revoked key alone; a new release is
	// signed with the new one.
	w.ks = all
	r3 := w.addRelease("1.2.0", 1, map[string][]byte{"rootfs": edit(r2.content["rootfs"], 9), "config": r1.content["config"]}, map[string]string{"config": "1.0.0"})
	w.assign(r3)
	out, err := u.RunOnce(context.Background())
	if err != nil || !out.Committed || out.Release != "1.2.0" {
		t.Fatalf("install 1.2.0 after the rotation: %+v, %v", out, err)
	}
	root, err := os.ReadFile(filepath.Join(d.stateDir, "repo", "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	md, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(root)
	if err != nil || md.Signed.Version != 3 {
		t.Fatalf("cached root: %v, %v; want version 3", md, err)
	}
	// Nothing new: the kept metadata is the rotated one.
	if out, err := u.RunOnce(context.Background()); err != nil || out.Installed || out.Release != "1.2.0" {
		t.Fatalf("idle check-in after the rotation: %+v, %v", out, err)
	}
}
