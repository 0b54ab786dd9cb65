package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/deviceapi"
)

// TestMeasureBootMeasuresAChangedFileAgain: measureBoot runs at every check-in; a file it
// measured is not extended again while it is unchanged, and is measured again (a new event with
// the new digest) once it changes within the same boot, whatever the file's times say.
func TestMeasureBootMeasuresAChangedFileAgain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	app := filepath.Join(dir, "app.bin")
	if err := os.WriteFile(app, []byte("application 1.0"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := New(ctx, Config{StateDir: filepath.Join(dir, "state"), Attester: string(deviceapi.KindSoftware), KernelBootID: "boot-1",
		Measures: []Measure{{Type: deviceapi.EventApplication, Name: "app", Version: "1.0", Path: app}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	digests := func() []string {
		t.Helper()
		var out []string
		for _, ev := range r.mlog.Events {
			if ev.Name == "app" {
				out = append(out, ev.Digest)
			}
		}
		return out
	}
	for range 2 {
		if err := r.measureBoot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := digests(); len(got) != 1 {
		t.Fatalf("an unchanged file measured twice in one boot: %v", got)
	}
	st, _ := os.Stat(app)
	time.Sleep(50 * time.Millisecond)                                           // a clock tick of the file's times
	if err := os.WriteFile(app, []byte("application 6.6"), 0o600); err != nil { // same size
		t.Fatal(err)
	}
	if err := os.Chtimes(app, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := r.measureBoot(ctx); err != nil {
		t.Fatal(err)
	}
	want, err := attest.FileDigest(app)
	if err != nil {
		t.Fatal(err)
	}
	if got := digests(); len(got) != 2 || got[1] != hex.EncodeToString(want) {
		t.Fatalf("after the change: events %v, want a second one with %x", got, want)
	}
}

// readCountFS counts the bytes read through it: the slots' reads.
type readCountFS struct {
	update.OSFS
	read *atomic.Int64
}

func (f readCountFS) OpenFile(name string, flag int, perm os.FileMode) (update.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return countedFile{File: file, read: f.read}, nil
}

type countedFile struct {
	update.File
	read *atomic.Int64
}

func (f countedFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.read.Add(int64(n))
	return n, err
}

// TestMeasuredSlotNotReadAgainToBoot: the booted slot's files that measureBoot hashed in this
// boot, settled, are not read again when the updater boots the slots in the same check-in
// (they share one memo of the files' digests); after a reboot both start afresh, and a file
// changed since is read again.
func TestMeasuredSlotNotReadAgainToBoot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var read atomic.Int64
	r, err := New(ctx, Config{StateDir: filepath.Join(dir, "state"), Attester: string(deviceapi.KindSoftware), KernelBootID: "boot-1",
		FS: readCountFS{read: &read}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	rootfs := bytes.Repeat([]byte("rootfs 1.0 "), 10000)
	sum := sha256.Sum256(rootfs)
	comps := map[string]update.ComponentImage{"rootfs": {Version: "1.0", SHA256: hex.EncodeToString(sum[:]), Length: int64(len(rootfs))}}
	if err := r.slots.Provision("1.0", comps, func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(rootfs)), nil }); err != nil {
		t.Fatal(err)
	}
	settled := func() time.Time { return time.Now().Add(time.Hour) }
	checkIn := func() int64 {
		t.Helper()
		r.digests.Shared.Now = settled
		if err := r.measureBoot(ctx); err != nil {
			t.Fatal(err)
		}
		read.Store(0)
		if _, err := r.slots.Boot(); err != nil {
			t.Fatal(err)
		}
		return read.Load()
	}
	if n := checkIn(); n >= int64(len(rootfs)) {
		t.Errorf("boot after the measurement read %d bytes, want only the state file", n)
	}
	// A reboot: a new memo, so the measurement reads the slot again and the boot does not.
	_ = r.reboot(ctx) // no server here: the attestation after the reboot fails, the boot is new all the same
	if n := checkIn(); n >= int64(len(rootfs)) {
		t.Errorf("boot after a reboot's measurement read %d bytes, want only the state file", n)
	}
	// A change in place, its times put back: the measurement sees it (a new version) and the
	// boot reads the file and refuses it.
	path := r.slots.ComponentPath("a", "rootfs")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Clone(rootfs)
	changed[7] ^= 1
	time.Sleep(50 * time.Millisecond) // a tick of the kernel's file clock
	if err := os.WriteFile(path, changed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := r.measureBoot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.slots.Boot(); err == nil {
		t.Error("the slot changed after it was measured booted")
	}
}
