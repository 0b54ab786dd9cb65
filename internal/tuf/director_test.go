package tuf

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// testDirector is a director whose root (version 1, signed by ks's one root key, valid for an
// hour) trusts online's director key.
func testDirector(t testing.TB) (ks *KeySet, online *OnlineKeys, root []byte, d *Director) {
	t.Helper()
	ks, err := GenerateKeySet(1)
	if err != nil {
		t.Fatal(err)
	}
	if online, err = GenerateOnlineKeys(); err != nil {
		t.Fatal(err)
	}
	if root, err = NewDirectorRoot(ks, 1, online.Director.Public(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, err = NewDirector([][]byte{root}, online.Director, DefaultExpiry()); err != nil {
		t.Fatal(err)
	}
	return ks, online, root, d
}

func TestDirectorIssue(t *testing.T) {
	_, _, droot, d := testDirector(t)
	now := time.Now()
	dev := strings.Repeat("ab", 32)
	im := testImage("rootfs", "1.1.0", "img")
	old := testImage("rootfs", "1.0.0", "old")
	files, err := d.Issue(Assignment{DeviceID: dev, Version: 3, Release: "1.1.0", Images: []Image{im},
		Deltas: []Delta{{From: old.SHA256, To: im.SHA256, SHA256: strings.Repeat("2", 64), Length: 5}}}, now)
	if err != nil {
		t.Fatal(err)
	}
	srv, url := serve(t)
	all := d.RootFiles()
	for k, v := range files.Files() {
		all[k] = v
	}
	srv.set(all)
	cfg, err := config.New(url, droot)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir = t.TempDir()
	cfg.LocalTargetsDir = filepath.Join(cfg.LocalMetadataDir, "t")
	u, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Refresh(); err != nil {
		t.Fatalf("director refresh: %v", err)
	}
	tf, err := u.GetTargetInfo(ImagePath(im.SHA256))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseImageCustom(tf)
	if err != nil {
		t.Fatal(err)
	}
	want := ImageCustom{Component: "rootfs", Version: "1.1.0", SecurityVersion: 1, Device: dev, Release: "1.1.0",
		Deltas: []DeltaRef{{From: old.SHA256, Path: DeltaPath(old.SHA256, im.SHA256)}}}
	if diff := cmp.Diff(c, want); diff != "" {
		t.Errorf("custom (-got +want):\n%s", diff)
	}
	if d.NeedsRefresh(files, now) {
		t.Error("fresh director metadata needs refresh")
	}
	if !d.NeedsRefresh(files, now.Add(13*time.Hour)) {
		t.Error("director metadata past half-life does not need refresh")
	}
}

func TestDirectorRefuses(t *testing.T) {
	ks, online, droot, d := testDirector(t)
	now := time.Now()
	if _, err := NewDirector([][]byte{droot}, online.Snapshot, DefaultExpiry()); err == nil {
		t.Error("NewDirector accepted a key the root does not trust")
	}
	if _, err := NewDirector(nil, online.Director, DefaultExpiry()); err == nil {
		t.Error("NewDirector accepted no root")
	}
	im := testImage("rootfs", "1.0.0", "x")
	dev := strings.Repeat("0", 64)
	tests := []struct {
		name string
		a    Assignment
	}{
		{"bad device id", Assignment{DeviceID: "../etc", Version: 1}},
		{"zero version", Assignment{DeviceID: dev, Version: 0}},
		{"component twice", Assignment{DeviceID: dev, Version: 1, Images: []Image{im, im}}},
		{"bad image", Assignment{DeviceID: dev, Version: 1, Images: []Image{{SHA256: "nope"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := d.Issue(tc.a, now); err == nil {
				t.Fatal("Issue accepted a bad assignment")
			}
		})
	}
	// The director root's root role is the offline root keys, not the director key.
	r, err := parseRoot(droot)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r.Signed.Roles[metadata.ROOT].KeyIDs, []string{ks.Role(metadata.ROOT)[0].ID()}); diff != "" {
		t.Errorf("director root role keys (-got +want):\n%s", diff)
	}
}

// A reference image (a kernel or binary the release holds only for the verifier) is never named
// to a device; the installable image beside it is.
func TestDirectorLeavesOutReferences(t *testing.T) {
	_, _, _, d := testDirector(t)
	now := time.Now()
	bundle := testImage("rootfs", "1.0.1", "bundle")
	bundle.Type, bundle.RAUCManifestHash = "rauc-bundle", strings.Repeat("c", 64)
	kernel := testImage("boot-kernel", "1.0.1", "kernel")
	kernel.Type = "reference"
	files, err := d.Issue(Assignment{DeviceID: strings.Repeat("ab", 32), Version: 1, Release: "1.0.1",
		Images: []Image{bundle, kernel}}, now)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := metadata.Targets().FromBytes(files.Targets)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for p := range tm.Signed.Targets {
		got = append(got, p)
	}
	if diff := cmp.Diff(got, []string{ImagePath(bundle.SHA256)}); diff != "" {
		t.Errorf("director targets (-got +want):\n%s", diff)
	}
}
