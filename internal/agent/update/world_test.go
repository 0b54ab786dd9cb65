package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/delta"
	"github.com/rampartsec/rampart/internal/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// world is an image repository and a director served from an httptest
// loopback server, built with the server-side tuf package exactly as the
// server does it, plus hooks through which a test plays the attacker.
type world struct {
	t        testing.TB
	ks       *tuf.KeySet
	online   *tuf.OnlineKeys
	repo     *tuf.Repository
	director *tuf.Director
	now      time.Time
	deviceID string

	mu        sync.Mutex
	blobs     map[string][]byte // target path -> bytes
	repoFiles map[string][]byte
	dirFiles  map[string][]byte
	dirVer    int64
	releases  map[string]release
	// intercept, when set, may answer a request itself (the attacker).
	intercept func(w http.ResponseWriter, r *http.Request) bool
	requests  []string // "METHOD path range"

	srv *httptest.Server
}

type release struct {
	version string
	images  map[string]tuf.Image
	content map[string][]byte
}

func newWorld(t testing.TB) *world {
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
	w := &world{
		t: t, ks: ks, online: online, repo: repo, director: dir, now: now,
		deviceID: strings.Repeat("d1", 32),
		blobs:    map[string][]byte{}, releases: map[string]release{},
	}
	w.srv = httptest.NewServer(w)
	t.Cleanup(w.srv.Close)
	w.publish()
	return w
}

func (w *world) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	w.requests = append(w.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Range"))
	hook := w.intercept
	w.mu.Unlock()
	if hook != nil && hook(rw, r) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var b []byte
	var ok bool
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/repo/metadata/"):
		b, ok = w.repoFiles[strings.TrimPrefix(p, "/repo/metadata/")]
	case strings.HasPrefix(p, "/repo/targets/"):
		b, ok = w.blobs[strings.TrimPrefix(p, "/repo/targets/")]
	case strings.HasPrefix(p, "/director/"+w.deviceID+"/"):
		b, ok = w.dirFiles[strings.TrimPrefix(p, "/director/"+w.deviceID+"/")]
	}
	if !ok {
		http.NotFound(rw, r)
		return
	}
	http.ServeContent(rw, r, "", time.Time{}, bytes.NewReader(b))
}

// publish refreshes what the server serves from the repository state.
func (w *world) publish() {
	w.t.Helper()
	files, err := w.repo.Files()
	if err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.repoFiles = files
	w.mu.Unlock()
}

// image makes deterministic binary-like content.
func image(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// edit changes a few runs of b, like a new build of the same program.
func edit(b []byte, seed uint64) []byte {
	out := append([]byte(nil), b...)
	r := rand.New(rand.NewPCG(seed, 3))
	for range 6 {
		at := r.IntN(len(out) - 64)
		copy(out[at:], image(r.Uint64(), 48))
	}
	return append(out, image(seed, 500)...)
}

func imageOf(component, version string, secver uint64, b []byte) tuf.Image {
	s := sha256.Sum256(b)
	return tuf.Image{SHA256: hex.EncodeToString(s[:]), Length: int64(len(b)), Component: component, Version: version, SecurityVersion: secver}
}

// addRelease signs a release the way `rampart release sign` does: deltas
// from each earlier release's images of the same component, targets signed
// with the offline keys, snapshot and timestamp online.
func (w *world) addRelease(version string, secver uint64, content map[string][]byte, imageVersions map[string]string) release {
	w.t.Helper()
	rel := release{version: version, images: map[string]tuf.Image{}, content: content}
	var images []tuf.Image
	for comp, b := range content {
		v := version
		if iv, ok := imageVersions[comp]; ok {
			v = iv
		}
		im := imageOf(comp, v, secver, b)
		if old, ok := w.findImage(im.SHA256); ok {
			im = old
		}
		rel.images[comp] = im
		images = append(images, im)
		w.mu.Lock()
		w.blobs[tuf.ImagePath(im.SHA256)] = b
		w.mu.Unlock()
	}
	var deltas []tuf.Delta
	for _, prev := range w.releases {
		for comp, im := range rel.images {
			old, ok := prev.images[comp]
			if !ok || old.SHA256 == im.SHA256 {
				continue
			}
			var p bytes.Buffer
			if err := delta.Build(context.Background(), &p, prev.content[comp], bytes.NewReader(content[comp]), im.Length, delta.BuildOptions{}); err != nil {
				w.t.Fatal(err)
			}
			s := sha256.Sum256(p.Bytes())
			d := tuf.Delta{From: old.SHA256, To: im.SHA256, SHA256: hex.EncodeToString(s[:]), Length: int64(p.Len())}
			deltas = append(deltas, d)
			w.mu.Lock()
			w.blobs[tuf.DeltaPath(d.From, d.To)] = p.Bytes()
			w.mu.Unlock()
		}
	}
	payload, err := w.repo.NextTargets(images, deltas, w.now)
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
	w.releases[version] = rel
	return rel
}

func (w *world) findImage(sha string) (tuf.Image, bool) {
	for _, r := range w.releases {
		for _, im := range r.images {
			if im.SHA256 == sha {
				return im, true
			}
		}
	}
	return tuf.Image{}, false
}

// assign has the director name rel's images for the device.
func (w *world) assign(rel release) {
	w.t.Helper()
	var images []tuf.Image
	for _, im := range rel.images {
		images = append(images, im)
	}
	w.assignImages(rel.version, images)
}

func (w *world) assignImages(version string, images []tuf.Image) {
	w.t.Helper()
	w.dirVer++
	f, err := w.director.Issue(tuf.Assignment{DeviceID: w.deviceID, Version: w.dirVer, Release: version, Images: images}, w.now)
	if err != nil {
		w.t.Fatal(err)
	}
	w.setDirector(f)
}

func (w *world) setDirector(f *tuf.DirectorFiles) {
	files := w.director.RootFiles()
	for k, v := range f.Files() {
		files[k] = v
	}
	w.mu.Lock()
	w.dirFiles = files
	w.mu.Unlock()
}

func (w *world) setIntercept(h func(http.ResponseWriter, *http.Request) bool) {
	w.mu.Lock()
	w.intercept = h
	w.mu.Unlock()
}

func (w *world) log() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.requests...)
}

// device is one simulated device: its slots and TUF caches.
type device struct {
	slotsDir string
	stateDir string
	reports  *recorder
}

func newDevice(t testing.TB) *device {
	d := t.TempDir()
	return &device{slotsDir: filepath.Join(d, "slots"), stateDir: filepath.Join(d, "state"), reports: &recorder{}}
}

type recorder struct {
	mu sync.Mutex
	s  []Status
	// lose is a state whose next report does not reach the server (a dropped connection, or
	// power lost before it went out): Report fails and records nothing.
	lose InstallState
}

var errReportLost = errors.New("report lost")

func (r *recorder) Report(_ context.Context, s Status) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lose != "" && s.State == r.lose {
		r.lose = ""
		return errReportLost
	}
	r.s = append(r.s, s)
	return nil
}

func (r *recorder) states() []InstallState {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []InstallState
	for _, s := range r.s {
		out = append(out, s.State)
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.s = nil
	r.mu.Unlock()
}

type updaterOpt func(*Config)

func (w *world) updater(t testing.TB, d *device, fsys FS, opts ...updaterOpt) *Updater {
	t.Helper()
	u, err := w.newUpdater(d, fsys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (w *world) newUpdater(d *device, fsys FS, opts ...updaterOpt) (*Updater, error) {
	slots, err := OpenSlots(d.slotsDir, fsys)
	if err != nil {
		return nil, err
	}
	cfg := Config{
		DeviceID:     w.deviceID,
		RepoURL:      w.srv.URL + "/repo",
		DirectorURL:  w.srv.URL + "/director/" + w.deviceID,
		RepoRoot:     w.repo.State().Roots[0],
		DirectorRoot: w.director.Roots()[0],
		StateDir:     d.stateDir,
		Slots:        slots,
		HTTPClient:   w.srv.Client(),
		Reporter:     d.reports,
		Limits:       Limits{RateWindow: 2 * time.Second, MinRate: 1},
	}
	for _, o := range opts {
		o(&cfg)
	}
	return New(cfg)
}

// booted reopens the slots with the real filesystem, as after a reboot,
// and returns what boots.
func booted(t *testing.T, d *device) (Boot, error) {
	t.Helper()
	s, err := OpenSlots(d.slotsDir, OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Boot()
}

func committedRelease(t *testing.T, d *device) string {
	t.Helper()
	s, err := OpenSlots(d.slotsDir, OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.State()
	if err != nil {
		t.Fatal(err)
	}
	if st.Committed == "" {
		return ""
	}
	return st.Slots[st.Committed].Release
}

func (w *world) forge(t *testing.T, role string) *tuf.PrivateKey {
	t.Helper()
	k, err := tuf.GenerateKey(role)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var _ = metadata.TARGETS
var _ = os.Remove
