package update

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// logBuffer collects an Updater's log, debug included.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// advancing is a device committed on 1.0.0 whose Updater is kept, and a third release, 1.2.0,
// signed after it: the next check-in finds a new timestamp in both repositories.
func advancing(t *testing.T) (*world, *device, *Updater, *logBuffer, release) {
	t.Helper()
	w := newWorld(t)
	r1, r2 := twoReleases(w)
	d := newDevice(t)
	w.assign(r1)
	logs := &logBuffer{}
	u := w.updater(t, d, nil, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	if out, err := u.RunOnce(context.Background()); err != nil || !out.Committed {
		t.Fatalf("install 1.0.0: %+v, %v", out, err)
	}
	r3 := w.addRelease("1.2.0", 2, map[string][]byte{"rootfs": edit(r2.content["rootfs"], 9), "config": r1.content["config"]}, map[string]string{"config": "1.0.0"})
	d.reports.reset()
	return w, d, u, logs, r3
}

// TestKeptMetadataAdvances: with the root unchanged and a new timestamp, the kept Updater
// verifies the new timestamp, snapshot and targets against the metadata it holds, without
// rebuilding go-tuf's client from disk, installs the release they name, and leaves on disk
// exactly the files served, from which an Updater started afresh (after a reboot) goes on.
func TestKeptMetadataAdvances(t *testing.T) {
	w, d, u, logs, r3 := advancing(t)
	w.assign(r3)
	n := len(w.log())
	out, err := u.RunOnce(context.Background())
	if err != nil || !out.Committed || out.Release != "1.2.0" {
		t.Fatalf("install 1.2.0: %+v, %v", out, err)
	}
	stillOn(t, d, "1.2.0")
	if u.repoTUF == nil || u.dirTUF == nil || u.repoTUF.up != nil || u.dirTUF.up != nil {
		t.Fatalf("kept metadata was not advanced (repo %+v, director %+v); log:\n%s", u.repoTUF, u.dirTUF, logs)
	}
	if strings.Contains(logs.String(), "not advanced") {
		t.Errorf("log:\n%s", logs)
	}
	// Each repository: the next root (none), the timestamp, the snapshot and the targets, once.
	var meta []string
	for _, r := range w.log()[n:] {
		if p := strings.Fields(r)[1]; !strings.Contains(p, "/targets/") || strings.HasSuffix(p, "targets.json") {
			meta = append(meta, p[strings.LastIndex(p, "/")+1:])
		}
	}
	if want := "2.root.json timestamp.json 3.snapshot.json 3.targets.json 2.root.json timestamp.json"; !strings.HasPrefix(strings.Join(meta, " "), want) || len(meta) != 8 {
		t.Errorf("metadata fetched: %v, want %s and the director's snapshot and targets", meta, want)
	}
	// On disk: what the server serves, under go-tuf's names.
	w.mu.Lock()
	served := map[string][]byte{
		"repo/timestamp.json": w.repoFiles["timestamp.json"], "repo/snapshot.json": w.repoFiles["3.snapshot.json"],
		"repo/targets.json": w.repoFiles["3.targets.json"], "director/timestamp.json": w.dirFiles["timestamp.json"],
	}
	w.mu.Unlock()
	for name, want := range served {
		got, err := os.ReadFile(filepath.Join(d.stateDir, name))
		if err != nil || !bytes.Equal(got, want) || len(want) == 0 {
			t.Errorf("%s on disk differs from the served file (%v)", name, err)
		}
	}
	before := metadataFiles(t, d)
	time.Sleep(20 * time.Millisecond) // a rewrite would change a modification time
	if out, err := w.updater(t, d, nil).RunOnce(context.Background()); err != nil || out.Installed || out.Release != "1.2.0" {
		t.Fatalf("check-in after a reboot: %+v, %v", out, err)
	}
	if after := metadataFiles(t, d); !maps.Equal(after, before) {
		t.Errorf("the full refresh after a reboot rewrote metadata the kept Updater wrote:\nbefore %v\nafter  %v", before, after)
	}
	// And the advanced metadata is kept in turn: nothing new, nothing fetched but the probes.
	n = len(w.log())
	if out, err := u.RunOnce(context.Background()); err != nil || out.Installed {
		t.Fatalf("idle check-in: %+v, %v", out, err)
	}
	if got := len(w.log()) - n; got != 4 {
		t.Errorf("idle check-in after the advance made %d requests, want 4: %v", got, w.log()[n:])
	}
}

// TestKeptMetadataAdvanceRefuses: forged or mismatched new metadata is refused by the kept
// Updater as a fresh one refuses it; nothing is installed and the kept metadata is dropped.
func TestKeptMetadataAdvanceRefuses(t *testing.T) {
	// flip changes the last byte of the first occurrence of in (a digit), keeping the JSON
	// valid, so that only the signature can tell.
	flip := func(b []byte, in string) []byte {
		i := bytes.Index(b, []byte(in))
		if i < 0 {
			t.Fatalf("%q not in %s", in, b)
		}
		b = bytes.Clone(b)
		b[i+len(in)-1] ^= 1
		return b
	}
	for _, c := range []struct {
		name   string
		attack func(w *world, r3 release)
	}{
		{"tampered timestamp", func(w *world, _ release) {
			w.repoFiles["timestamp.json"] = flip(w.repoFiles["timestamp.json"], `"expires": "2`)
		}},
		{"tampered targets", func(w *world, _ release) {
			w.repoFiles["3.targets.json"] = flip(w.repoFiles["3.targets.json"], `"1.2.0`)
		}},
		{"tampered director targets", func(w *world, _ release) {
			for name, b := range w.dirFiles {
				if strings.HasSuffix(name, "targets.json") && bytes.Contains(b, []byte(`"1.2.0"`)) {
					w.dirFiles[name] = flip(b, `"1.2.0`)
				}
			}
		}},
		{"tampered snapshot", func(w *world, _ release) {
			w.repoFiles["3.snapshot.json"] = flip(w.repoFiles["3.snapshot.json"], `"expires": "2`)
		}},
		{"snapshot from another version", func(w *world, _ release) {
			w.repoFiles["3.snapshot.json"] = w.repoFiles["2.snapshot.json"]
		}},
		{"director signed by a forged key", func(w *world, r3 release) {
			forged := w.forge(t, metadata.ROOT)
			droot, err := tuf.NewDirectorRoot(&tuf.KeySet{Keys: []*tuf.PrivateKey{forged}}, 1, forged.Public(), w.now.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			rogue, err := tuf.NewDirector([][]byte{droot}, &tuf.PrivateKey{Role: tuf.RoleDirector, Private: forged.Private}, tuf.DefaultExpiry())
			if err != nil {
				t.Fatal(err)
			}
			var images []tuf.Image
			for _, im := range r3.images {
				images = append(images, im)
			}
			f, err := rogue.Issue(tuf.Assignment{DeviceID: w.deviceID, Version: 100, Release: "1.2.0", Images: images}, w.now)
			if err != nil {
				t.Fatal(err)
			}
			maps.Copy(w.dirFiles, f.Files())
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, d, u, logs, r3 := advancing(t)
			w.assign(r3)
			w.mu.Lock()
			w.repoFiles, w.dirFiles = maps.Clone(w.repoFiles), maps.Clone(w.dirFiles)
			c.attack(w, r3)
			w.mu.Unlock()
			_, err := u.RunOnce(context.Background())
			if !errors.Is(err, ErrMetadata) {
				t.Fatalf("RunOnce: %v, want ErrMetadata", err)
			}
			if !strings.Contains(logs.String(), "kept metadata not advanced") {
				t.Errorf("the kept metadata did not refuse the attack itself; log:\n%s", logs)
			}
			stillOn(t, d, "1.0.0")
		})
	}
}

// countingTransport counts the requests made through it.
type countingTransport struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// TestAdoptKeepsVerifiedMetadata: an Updater made anew with another HTTP client (the agent's
// simulated reboot) adopts the metadata the previous one verified, advances it with the next
// release through its own client, and an Updater of another state folder adopts nothing.
func TestAdoptKeepsVerifiedMetadata(t *testing.T) {
	w, d, prev, _, r3 := advancing(t)
	other := w.updater(t, newDevice(t), nil)
	other.Adopt(prev)
	if other.repoTUF != nil || other.dirTUF != nil || prev.repoTUF == nil {
		t.Fatal("an Updater of another state folder adopted the metadata")
	}
	tr := &countingTransport{rt: w.srv.Client().Transport}
	u := w.updater(t, d, nil, func(c *Config) { c.HTTPClient = &http.Client{Transport: tr} })
	u.Adopt(prev)
	if u.repoTUF == nil || u.dirTUF == nil || prev.repoTUF != nil || prev.dirTUF != nil {
		t.Fatal("the metadata was not handed over")
	}
	w.assign(r3)
	out, err := u.RunOnce(context.Background())
	if err != nil || !out.Committed || out.Release != "1.2.0" {
		t.Fatalf("install 1.2.0: %+v, %v", out, err)
	}
	if u.repoTUF == nil || u.repoTUF.up != nil || u.dirTUF == nil || u.dirTUF.up != nil {
		t.Error("the adopted metadata was not advanced")
	}
	if tr.n.Load() < 9 {
		t.Errorf("%d requests through the new client, want every download", tr.n.Load())
	}
	stillOn(t, d, "1.2.0")
}
