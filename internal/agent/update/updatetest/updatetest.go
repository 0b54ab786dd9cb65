// Package updatetest serves a signed image repository and a device's director metadata on a
// loopback httptest server, built with the server's own tuf package, for tests of the agent's
// installers (internal/agent/rauc, internal/agent/module), which cannot reach the update
// package's internal test world. Only tests import it.
package updatetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/tuf"
)

// World is an image repository and one device's director.
type World struct {
	t        testing.TB
	ks       *tuf.KeySet
	repo     *tuf.Repository
	director *tuf.Director
	now      time.Time
	DeviceID string

	mu       sync.Mutex
	blobs    map[string][]byte
	repoFile map[string][]byte
	dirFiles map[string][]byte
	dirVer   int64
	srv      *httptest.Server
}

// New starts a world whose server stops with the test.
func New(t testing.TB) *World {
	t.Helper()
	ks, err := tuf.GenerateKeySet(1)
	if err != nil {
		t.Fatal(err)
	}
	online, err := tuf.GenerateOnlineKeys()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	exp := tuf.DefaultExpiry()
	root, err := tuf.NewRoot(ks, 1, online.Public(), now.Add(exp.Root))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := tuf.OpenRepository(tuf.State{}, online, exp)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.AddRoot(root, now); err != nil {
		t.Fatal(err)
	}
	droot, err := tuf.NewDirectorRoot(ks, 1, online.Director.Public(), now.Add(exp.Root))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := tuf.NewDirector([][]byte{droot}, online.Director, exp)
	if err != nil {
		t.Fatal(err)
	}
	w := &World{t: t, ks: ks, repo: repo, director: dir, now: now, DeviceID: strings.Repeat("d2", 32), blobs: map[string][]byte{}}
	w.srv = httptest.NewServer(w)
	t.Cleanup(w.srv.Close)
	w.publish()
	return w
}

// ServeHTTP serves the repository's metadata and targets and the device's director metadata.
func (w *World) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b []byte
	var ok bool
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/repo/metadata/"):
		b, ok = w.repoFile[strings.TrimPrefix(p, "/repo/metadata/")]
	case strings.HasPrefix(p, "/repo/targets/"):
		b, ok = w.blobs[strings.TrimPrefix(p, "/repo/targets/")]
	case strings.HasPrefix(p, "/director/"+w.DeviceID+"/"):
		b, ok = w.dirFiles[strings.TrimPrefix(p, "/director/"+w.DeviceID+"/")]
	}
	if !ok {
		http.NotFound(rw, r)
		return
	}
	http.ServeContent(rw, r, "", time.Time{}, bytes.NewReader(b))
}

func (w *World) publish() {
	w.t.Helper()
	files, err := w.repo.Files()
	if err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.repoFile = files
	w.mu.Unlock()
}

// Image is one image of a release: its bytes and what the targets say of it.
type Image struct {
	Component        string
	Type             string
	RAUCManifestHash string
	Bytes            []byte
}

// Release signs version with its images the way `rampart release sign` does, and returns the
// signed images for Assign.
func (w *World) Release(version string, secver uint64, images ...Image) []tuf.Image {
	w.t.Helper()
	var out []tuf.Image
	for _, im := range images {
		s := sha256.Sum256(im.Bytes)
		ti := tuf.Image{SHA256: hex.EncodeToString(s[:]), Length: int64(len(im.Bytes)), Component: im.Component, Version: version,
			SecurityVersion: secver, Type: im.Type, RAUCManifestHash: im.RAUCManifestHash}
		out = append(out, ti)
		w.mu.Lock()
		w.blobs[tuf.ImagePath(ti.SHA256)] = im.Bytes
		w.mu.Unlock()
	}
	payload, err := w.repo.NextTargets(out, nil, w.now)
	if err != nil {
		w.t.Fatal(err)
	}
	signed, err := tuf.SignTargets(w.repo.Root(), payload, w.ks)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.repo.SetTargets(signed, w.now); err != nil {
		w.t.Fatal(err)
	}
	w.publish()
	return out
}

// Assign has the director name images of release for the device.
func (w *World) Assign(release string, images []tuf.Image) {
	w.t.Helper()
	w.mu.Lock()
	w.dirVer++
	v := w.dirVer
	w.mu.Unlock()
	f, err := w.director.Issue(tuf.Assignment{DeviceID: w.DeviceID, Version: v, Release: release, Images: images}, w.now)
	if err != nil {
		w.t.Fatal(err)
	}
	files := w.director.RootFiles()
	for k, b := range f.Files() {
		files[k] = b
	}
	w.mu.Lock()
	w.dirFiles = files
	w.mu.Unlock()
}

// Config is an updater configuration for a device whose state is under dir, reporting to rep.
func (w *World) Config(t testing.TB, dir string, rep update.Reporter, fsys update.FS) update.Config {
	t.Helper()
	slots, err := update.OpenSlots(filepath.Join(dir, "slots"), fsys)
	if err != nil {
		t.Fatal(err)
	}
	return update.Config{
		DeviceID: w.DeviceID, RepoURL: w.srv.URL + "/repo", DirectorURL: w.srv.URL + "/director/" + w.DeviceID,
		RepoRoot: w.repo.State().Roots[0], DirectorRoot: w.director.Roots()[0],
		StateDir: filepath.Join(dir, "update"), Slots: slots, HTTPClient: w.srv.Client(), Reporter: rep,
		Limits: update.Limits{RateWindow: 5 * time.Second, MinRate: 1},
	}
}

// Recorder keeps the install states reported.
type Recorder struct {
	mu sync.Mutex
	S  []update.Status
}

// Report implements update.Reporter.
func (r *Recorder) Report(_ context.Context, s update.Status) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.S = append(r.S, s)
	return nil
}

// Take returns the states reported since the last Take, in order.
func (r *Recorder) Take() []update.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.S
	r.S = nil
	return out
}
