package tuf

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// files is a tiny static server for metadata, replaceable between client runs.
type files struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (f *files) set(m map[string][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = m
}

func (f *files) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	b, ok := f.m[strings.TrimPrefix(r.URL.Path, "/")]
	f.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(b)
}

func serve(t *testing.T) (*files, string) {
	t.Helper()
	f := &files{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// client runs a fresh go-tuf updater that trusts root and caches in dir.
func client(t *testing.T, url string, root []byte, dir string) (*updater.Updater, error) {
	t.Helper()
	cfg, err := config.New(url, root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir = dir
	cfg.LocalTargetsDir = filepath.Join(dir, "targets")
	u, err := updater.New(cfg)
	if err != nil {
		return nil, err
	}
	return u, u.Refresh()
}

type fixture struct {
	ks     *KeySet
	online *OnlineKeys
	repo   *Repository
	now    time.Time
}

func newFixture(t *testing.T, n, threshold int) *fixture {
	t.Helper()
	ks, err := GenerateKeySet(n)
	if err != nil {
		t.Fatal(err)
	}
	online, err := GenerateOnlineKeys()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	root, err := NewRoot(ks, threshold, online.Public(), now.Add(DefaultExpiry().Root))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := OpenRepository(State{}, online, DefaultExpiry())
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.AddRoot(root, now); err != nil {
		t.Fatal(err)
	}
	return &fixture{ks: ks, online: online, repo: repo, now: now}
}

func testImage(component, version string, content string) Image {
	s := sha256.Sum256([]byte(content))
	return Image{SHA256: hex.EncodeToString(s[:]), Length: int64(len(content)), Component: component, Version: version, SecurityVersion: 1}
}

func (f *fixture) release(t *testing.T, ks *KeySet, images ...Image) {
	t.Helper()
	payload, err := f.repo.NextTargets(images, nil, f.now)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := SignTargets(f.repo.Root(), payload, ks)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.repo.SetTargets(signed, f.now); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) files(t *testing.T) map[string][]byte {
	t.Helper()
	m, err := f.repo.Files()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRepositoryClientSeesSignedImage(t *testing.T) {
	f := newFixture(t, 1, 1)
	im := testImage("rootfs", "1.0.0", "image one")
	f.release(t, f.ks, im)
	srv, url := serve(t)
	srv.set(f.files(t))
	u, err := client(t, url, f.repo.st.Roots[0], t.TempDir())
	if err != nil {
		t.Fatalf("client refresh: %v", err)
	}
	tf, err := u.GetTargetInfo(ImagePath(im.SHA256))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseImageCustom(tf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, ImageCustom{Component: "rootfs", Version: "1.0.0", SecurityVersion: 1}); diff != "" {
		t.Errorf("custom (-got +want):\n%s", diff)
	}
	if tf.Length != im.Length {
		t.Errorf("length = %d, want %d", tf.Length, im.Length)
	}
}

func TestThresholdSigning(t *testing.T) {
	f := newFixture(t, 3, 2)
	im := testImage("app", "1.0.0", "x")
	payload, err := f.repo.NextTargets([]Image{im}, nil, f.now)
	if err != nil {
		t.Fatal(err)
	}
	one := &KeySet{Keys: f.ks.Role(metadata.TARGETS)[:1]}
	if _, err := SignTargets(f.repo.Root(), payload, one); !errors.Is(err, ErrThreshold) {
		t.Fatalf("SignTargets with 1 of 2 keys: %v, want ErrThreshold", err)
	}
	two := &KeySet{Keys: f.ks.Role(metadata.TARGETS)[1:]}
	signed, err := SignTargets(f.repo.Root(), payload, two)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.repo.SetTargets(signed, f.now); err != nil {
		t.Fatal(err)
	}
	// Targets signed by one key, built by hand, are refused by the server.
	next, err := f.repo.NextTargets([]Image{testImage("app", "1.1.0", "y")}, nil, f.now)
	if err != nil {
		t.Fatal(err)
	}
	half, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(next)
	if err != nil {
		t.Fatal(err)
	}
	if err := signWith(half, one.Keys[0]); err != nil {
		t.Fatal(err)
	}
	hb, err := half.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.repo.SetTargets(hb, f.now); !errors.Is(err, ErrVerify) {
		t.Fatalf("SetTargets below the threshold: %v, want ErrVerify", err)
	}
}

func TestSetTargetsRefuses(t *testing.T) {
	f := newFixture(t, 1, 1)
	f.release(t, f.ks, testImage("app", "1.0.0", "a"))
	old := f.repo.Targets()
	stranger, err := GenerateKeySet(1)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := f.repo.NextTargets([]Image{testImage("app", "2.0.0", "b")}, nil, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignTargets(f.repo.Root(), payload, stranger); !errors.Is(err, ErrThreshold) {
		t.Fatalf("signing with unknown keys: %v", err)
	}
	expired, err := BuildTargets(f.repo.Targets(), nil, nil, f.now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expiredSigned, err := SignTargets(f.repo.Root(), expired, f.ks)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"same version again", old},
		{"expired", expiredSigned},
		{"unsigned", payload},
		{"garbage", []byte("{}")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.repo.SetTargets(tc.data, f.now); err == nil {
				t.Fatal("SetTargets accepted bad targets")
			}
			if diff := cmp.Diff(string(f.repo.Targets()), string(old)); diff != "" {
				t.Errorf("targets changed after a refused update (-got +want):\n%s", diff)
			}
		})
	}
}

func TestBuildTargetsImmutable(t *testing.T) {
	im := testImage("app", "1.0.0", "a")
	b, err := BuildTargets(nil, []Image{im}, nil, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	changed := im
	changed.Version = "9.9.9"
	if _, err := BuildTargets(b, []Image{changed}, nil, time.Now().Add(time.Hour)); err == nil {
		t.Error("BuildTargets let a signed image change its version")
	}
	bad := []Image{{SHA256: "XYZ", Component: "a", Version: "1"}, {SHA256: im.SHA256, Component: "../x", Version: "1"}, {SHA256: im.SHA256, Component: "a", Version: "one"}}
	for _, im := range bad {
		if _, err := BuildTargets(nil, []Image{im}, nil, time.Now()); err == nil {
			t.Errorf("BuildTargets accepted %+v", im)
		}
	}
	if _, err := BuildTargets(b, nil, []Delta{{From: im.SHA256, To: strings.Repeat("0", 64), SHA256: im.SHA256}}, time.Now()); err == nil {
		t.Error("BuildTargets accepted a delta to an unknown image")
	}
}

func TestDeltasRecordedOnImage(t *testing.T) {
	a := testImage("app", "1.0.0", "a")
	b := testImage("app", "1.1.0", "b")
	d := Delta{From: a.SHA256, To: b.SHA256, SHA256: strings.Repeat("1", 64), Length: 10}
	payload, err := BuildTargets(nil, []Image{a, b}, []Delta{d}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := parseTargets(payload)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseImageCustom(tm.Signed.Targets[ImagePath(b.SHA256)])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c.Deltas, []DeltaRef{{From: a.SHA256, Path: DeltaPath(a.SHA256, b.SHA256)}}); diff != "" {
		t.Errorf("deltas (-got +want):\n%s", diff)
	}
	if got := tm.Signed.Targets[DeltaPath(a.SHA256, b.SHA256)]; got == nil || got.Length != 10 {
		t.Errorf("delta target = %+v", got)
	}
	s, err := SummarizeTargets(payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Images) != 2 || s.Deltas != 1 {
		t.Errorf("summary = %+v", s)
	}
}

func TestRefreshOnlineRoles(t *testing.T) {
	f := newFixture(t, 1, 1)
	f.release(t, f.ks, testImage("app", "1.0.0", "a"))
	version := func() (int64, int64) {
		s, _ := (&metadata.Metadata[metadata.SnapshotType]{}).FromBytes(f.repo.st.Snapshot)
		ts, _ := (&metadata.Metadata[metadata.TimestampType]{}).FromBytes(f.repo.st.Timestamp)
		return s.Signed.Version, ts.Signed.Version
	}
	s0, t0 := version()
	tests := []struct {
		name         string
		at           time.Time
		changed      bool
		snapDelta    int64
		timestampInc int64
	}{
		{"fresh", f.now.Add(time.Minute), false, 0, 0},
		{"timestamp past half-life", f.now.Add(13 * time.Hour), true, 0, 1},
		{"snapshot past half-life", f.now.Add(4 * 24 * time.Hour), true, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changed, err := f.repo.Refresh(tc.at)
			if err != nil {
				t.Fatal(err)
			}
			s, ts := version()
			if diff := cmp.Diff([]int64{boolInt(changed), s - s0, ts - t0}, []int64{boolInt(tc.changed), tc.snapDelta, tc.timestampInc}); diff != "" {
				t.Errorf("changed, snapshot and timestamp increments (-got +want):\n%s", diff)
			}
		})
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// TestRootRotationSkippedVersions rotates root three times, revoking a
// targets key and the first root key on the way, and checks that a client
// still trusting version 1 walks the chain, and that targets signed with the
// revoked key are refused by the server and by the client.
func TestRootRotationSkippedVersions(t *testing.T) {
	f := newFixture(t, 2, 1)
	f.release(t, f.ks, testImage("app", "1.0.0", "a"))
	root1 := f.repo.Root()
	srv, url := serve(t)
	srv.set(f.files(t))
	dir := t.TempDir()
	if _, err := client(t, url, root1, dir); err != nil {
		t.Fatalf("first refresh: %v", err)
	}

	revokedTargets := f.ks.Role(metadata.TARGETS)[0]
	keptTargets := f.ks.Role(metadata.TARGETS)[1]
	oldRoot := f.ks.Role(metadata.ROOT)[0]
	newRootKey, err := GenerateKey(metadata.ROOT)
	if err != nil {
		t.Fatal(err)
	}
	all := &KeySet{Keys: append(append([]*PrivateKey(nil), f.ks.Keys...), newRootKey)}
	changes := []RootChange{
		{Revoke: map[string][]string{metadata.TARGETS: {revokedTargets.ID()}}},
		{Add: map[string][]*metadata.Key{metadata.ROOT: {newRootKey.Public()}}},
		{Revoke: map[string][]string{metadata.ROOT: {oldRoot.ID()}}},
	}
	for i, ch := range changes {
		ch.Expires = f.now.Add(DefaultExpiry().Root)
		next, err := RotateRoot(f.repo.Root(), ch, all)
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		if err := f.repo.AddRoot(next, f.now); err != nil {
			t.Fatalf("rotation %d: AddRoot: %v", i, err)
		}
	}
	// The server refuses targets signed by the revoked key alone.
	payload, err := f.repo.NextTargets([]Image{testImage("app", "2.0.0", "evil")}, nil, f.now)
	if err != nil {
		t.Fatal(err)
	}
	evil, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := signWith(evil, revokedTargets); err != nil {
		t.Fatal(err)
	}
	evilBytes, err := evil.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.repo.SetTargets(evilBytes, f.now); !errors.Is(err, ErrVerify) {
		t.Fatalf("SetTargets with a revoked key: %v, want ErrVerify", err)
	}
	f.release(t, &KeySet{Keys: []*PrivateKey{keptTargets}}, testImage("app", "1.1.0", "good"))

	srv.set(f.files(t))
	u, err := client(t, url, root1, dir)
	if err != nil {
		t.Fatalf("refresh across skipped root versions: %v", err)
	}
	if _, err := u.GetTargetInfo(ImagePath(testImage("app", "1.1.0", "good").SHA256)); err != nil {
		t.Fatalf("new image after rotation: %v", err)
	}
	// A mirror serving targets signed with the revoked key is refused.
	m := f.files(t)
	tm, _ := parseTargets(f.repo.Targets())
	forged := metadata.Targets(f.now.Add(time.Hour))
	forged.Signed.Version = tm.Signed.Version + 1
	forged.Signed.Targets = tm.Signed.Targets
	if err := signWith(forged, revokedTargets); err != nil {
		t.Fatal(err)
	}
	fb, _ := forged.ToBytes(false)
	m["targets.json"] = fb
	m[itoa(forged.Signed.Version)+".targets.json"] = fb
	// Point the snapshot at the forged version, re-signed by the online key.
	snap := metadata.Snapshot(f.now.Add(time.Hour))
	snap.Signed.Version = 100
	snap.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": metadata.MetaFile(forged.Signed.Version)}
	root, _ := parseRoot(f.repo.Root())
	if err := signOnline(root, snap, metadata.SNAPSHOT, f.online.Snapshot); err != nil {
		t.Fatal(err)
	}
	sb, _ := snap.ToBytes(false)
	m["100.snapshot.json"] = sb
	ts := metadata.Timestamp(f.now.Add(time.Hour))
	ts.Signed.Version = 100
	ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metadata.MetaFile(100)}
	if err := signOnline(root, ts, metadata.TIMESTAMP, f.online.Timestamp); err != nil {
		t.Fatal(err)
	}
	m["timestamp.json"], _ = ts.ToBytes(false)
	srv.set(m)
	if _, err := client(t, url, root1, dir); err == nil {
		t.Fatal("client accepted targets signed with a revoked key")
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestRotateRootNeedsBothThresholds(t *testing.T) {
	f := newFixture(t, 1, 1)
	newRootKey, err := GenerateKey(metadata.ROOT)
	if err != nil {
		t.Fatal(err)
	}
	ch := RootChange{
		Add:     map[string][]*metadata.Key{metadata.ROOT: {newRootKey.Public()}},
		Revoke:  map[string][]string{metadata.ROOT: {f.ks.Role(metadata.ROOT)[0].ID()}},
		Expires: f.now.Add(time.Hour),
	}
	// Only the new key: the previous root's threshold is not met.
	if _, err := RotateRoot(f.repo.Root(), ch, &KeySet{Keys: []*PrivateKey{newRootKey}}); !errors.Is(err, ErrThreshold) {
		t.Fatalf("RotateRoot without the old key: %v, want ErrThreshold", err)
	}
	// Only the old key: the new root's threshold is not met.
	if _, err := RotateRoot(f.repo.Root(), ch, f.ks); !errors.Is(err, ErrThreshold) {
		t.Fatalf("RotateRoot without the new key: %v, want ErrThreshold", err)
	}
	// A root that skips a version is refused by the server.
	next, err := RotateRoot(f.repo.Root(), RootChange{Expires: f.now.Add(time.Hour)}, f.ks)
	if err != nil {
		t.Fatal(err)
	}
	skip, err := RotateRoot(next, RootChange{Expires: f.now.Add(time.Hour)}, f.ks)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.repo.AddRoot(skip, f.now); !errors.Is(err, ErrVerify) {
		t.Fatalf("AddRoot skipping a version: %v, want ErrVerify", err)
	}
}

// TestAddRootRefusalSentences pins the sentence an API client reads when the server refuses a
// root: what is wrong with it, with no function names (it is the public sentence that
// release's refusal carries).
func TestAddRootRefusalSentences(t *testing.T) {
	f := newFixture(t, 1, 1)
	next, err := RotateRoot(f.repo.Root(), RootChange{Expires: f.now.Add(time.Hour)}, f.ks)
	if err != nil {
		t.Fatal(err)
	}
	skip, err := RotateRoot(next, RootChange{Expires: f.now.Add(time.Hour)}, f.ks)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := GenerateOnlineKeys()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := NewRoot(f.ks, 1, stranger.Public(), f.now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := OpenRepository(State{}, f.online, DefaultExpiry())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		repo *Repository
		root []byte
		want string
	}{
		{"skipped version", f.repo, skip, "the new root must be version 2, not 3"},
		{"foreign online keys", fresh, foreign, "the root does not trust the server's online snapshot key; make the root with `rampart keys init` against this server"},
		{"not a root", fresh, []byte(`{"signed":{"_type":"targets"},"signatures":[]}`), "the root is not TUF root metadata (value error: expected metadata type root, got - targets)"},
	} {
		err := tc.repo.AddRoot(tc.root, f.now)
		if !errors.Is(err, ErrVerify) {
			t.Errorf("%s: AddRoot = %v, want ErrVerify", tc.name, err)
		}
		if msg, ok := public.Message(err); !ok || msg != tc.want {
			t.Errorf("%s: public sentence %q (%v), want %q", tc.name, msg, ok, tc.want)
		}
	}
}

// TestRaiseVersionsAfterRestore restores a repository's state from before metadata that
// clients have since fetched: without RaiseVersions they refuse it as a rollback; with it, a
// client that fetched only online roles signed after the backup accepts it at once, and one that
// fetched targets signed after the backup accepts it once targets are signed again (the server
// offers a version above everything it could have had).
func TestRaiseVersionsAfterRestore(t *testing.T) {
	f := newFixture(t, 1, 1)
	f.release(t, f.ks, testImage("app", "1.0.0", "a"))
	backup := f.repo.State()
	srv, url := serve(t)
	first := f.repo.st.Roots[0]

	// After the backup: the timestamp is refreshed (one client fetches it), then a release is
	// signed (another client fetches its targets).
	if _, err := f.repo.Refresh(f.now.Add(13 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	srv.set(f.files(t))
	onlineOnly := t.TempDir()
	if _, err := client(t, url, first, onlineOnly); err != nil {
		t.Fatal(err)
	}
	f.release(t, f.ks, testImage("app", "1.1.0", "b"))
	srv.set(f.files(t))
	sawTargets := t.TempDir()
	if _, err := client(t, url, first, sawTargets); err != nil {
		t.Fatal(err)
	}

	// Restored as it was: both clients refuse it.
	restored, err := OpenRepository(backup, f.online, DefaultExpiry())
	if err != nil {
		t.Fatal(err)
	}
	f.repo = restored
	srv.set(f.files(t))
	for _, dir := range []string{onlineOnly, sawTargets} {
		if _, err := client(t, url, first, dir); err == nil || !strings.Contains(err.Error(), "version") {
			t.Fatalf("a client that fetched newer metadata accepted the restored repository: %v", err)
		}
	}

	// Raised: the client that saw only online roles accepts it; the one that saw newer targets
	// still refuses (the server cannot sign targets), until a release is signed again.
	_, s0, ts0, err := restored.Versions()
	if err != nil {
		t.Fatal(err)
	}
	if err := restored.RaiseVersions(RestoreMargin, f.now.Add(14*time.Hour)); err != nil {
		t.Fatal(err)
	}
	tv, s1, ts1, err := restored.Versions()
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s0+RestoreMargin || ts1 != ts0+RestoreMargin || tv != 1 {
		t.Fatalf("raised versions: targets %d, snapshot %d (was %d), timestamp %d (was %d)", tv, s1, s0, ts1, ts0)
	}
	srv.set(f.files(t))
	if _, err := client(t, url, first, onlineOnly); err != nil {
		t.Fatalf("a client that fetched only newer online roles refuses the raised repository: %v", err)
	}
	if _, err := client(t, url, first, sawTargets); err == nil {
		t.Fatal("a client that fetched newer targets accepted the restored targets")
	}
	payload, err := restored.NextTargets([]Image{testImage("app", "1.2.0", "c")}, nil, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := SummarizeTargets(payload); err != nil || s.Version != 1+RestoreMargin+1 {
		t.Fatalf("next targets offered after the raise: %+v, %v; want version %d", s, err, 1+RestoreMargin+1)
	}
	f.release(t, f.ks, testImage("app", "1.2.0", "c"))
	srv.set(f.files(t))
	for _, dir := range []string{onlineOnly, sawTargets, t.TempDir()} {
		if _, err := client(t, url, first, dir); err != nil {
			t.Fatalf("a client refuses the repository once targets are signed again: %v", err)
		}
	}
	if err := restored.RaiseVersions(0, f.now); err == nil {
		t.Error("a margin of 0 was accepted")
	}
}
