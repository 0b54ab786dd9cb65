//go:build linux

package update

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// readCountFS counts the bytes read through it.
type readCountFS struct {
	OSFS
	read *atomic.Int64
}

func (f readCountFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return countedFile{File: file, read: f.read}, nil
}

type countedFile struct {
	File
	read *atomic.Int64
}

func (f countedFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.read.Add(int64(n))
	return n, err
}

// TestBootReadsTheCommittedSlotOncePerChange: the updater boots the slots at every check-in;
// one Slots reads the committed slot's files whole the first time and then only when they
// change. A write in place that keeps the size and puts the modification time back is still
// seen, and the slot falls back; a new Slots (an agent started again, as after a reboot)
// reads everything once more.
func TestBootReadsTheCommittedSlotOncePerChange(t *testing.T) {
	w := newWorld(t)
	r1, r2 := twoReleases(w)
	d := newDevice(t)
	ctx := context.Background()
	for _, r := range []release{r1, r2} {
		w.assign(r)
		if out, err := w.updater(t, d, nil).RunOnce(ctx); err != nil || !out.Committed {
			t.Fatalf("install %s: %+v, %v", r.version, out, err)
		}
	}
	var read atomic.Int64
	s, err := OpenSlots(d.slotsDir, readCountFS{read: &read})
	if err != nil {
		t.Fatal(err)
	}
	s.verified.Now = func() time.Time { return time.Now().Add(time.Hour) } // the files have settled
	st, _ := s.State()
	var size int64
	for _, c := range st.Slots[st.Committed].Components {
		size += c.Length
	}
	boot := func() Boot {
		t.Helper()
		read.Store(0)
		b, err := s.Boot()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := boot(); b.Slot != st.Committed || b.RolledBack != "" || read.Load() < size {
		t.Fatalf("first boot: %+v, read %d bytes, want the committed slot's %d", b, read.Load(), size)
	}
	if b := boot(); b.Slot != st.Committed || read.Load() >= size {
		t.Fatalf("second boot, nothing changed: %+v, read %d bytes, want only the state file", b, read.Load())
	}

	// Flip one byte of the committed rootfs in place, its times put back.
	path := s.ComponentPath(st.Committed, "rootfs")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 1
	time.Sleep(50 * time.Millisecond) // a tick of the kernel's file clock
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if b := boot(); b.Info.Release != "1.0.0" || b.Slot == st.Committed || !strings.Contains(b.RolledBack, "failed verification") {
		t.Fatalf("boot after the change = %+v, want a fallback to 1.0.0", b)
	}

	// A new Slots remembers nothing: its first boot reads the (now committed) slot whole.
	s2, err := OpenSlots(d.slotsDir, readCountFS{read: &read})
	if err != nil {
		t.Fatal(err)
	}
	s2.verified.Now = s.verified.Now
	read.Store(0)
	if _, err := s2.Boot(); err != nil || read.Load() < size {
		t.Fatalf("a new Slots' first boot: %v, read %d bytes, want at least %d", err, read.Load(), size)
	}
}

// TestStateKeptUntilTheFileChanges: Slots answers the state it last read or wrote without
// reading the file again while the file's version is the same, reads it again once anything
// replaced or rewrote it, and hands out copies that share nothing with what it keeps.
func TestStateKeptUntilTheFileChanges(t *testing.T) {
	w := newWorld(t)
	r1, _ := twoReleases(w)
	d := newDevice(t)
	w.assign(r1)
	if out, err := w.updater(t, d, nil).RunOnce(context.Background()); err != nil || !out.Committed {
		t.Fatalf("install: %+v, %v", out, err)
	}
	var read atomic.Int64
	s, err := OpenSlots(d.slotsDir, readCountFS{read: &read})
	if err != nil {
		t.Fatal(err)
	}
	state := func() (SlotState, int64) {
		t.Helper()
		read.Store(0)
		st, err := s.State()
		if err != nil {
			t.Fatal(err)
		}
		return st, read.Load()
	}
	st, n := state()
	if n == 0 || st.Committed == "" {
		t.Fatalf("first State: %+v, read %d bytes", st, n)
	}
	// A copy: changing it changes nothing kept.
	st.Slots[st.Committed].Components["rootfs"] = ComponentImage{Version: "6.6.6"}
	st.Committed, st.SecurityFloor["rootfs"] = "x", 99
	again, n := state()
	if n != 0 {
		t.Errorf("second State read %d bytes, want none", n)
	}
	if again.Committed == "x" || again.Slots[again.Committed].Components["rootfs"].Version == "6.6.6" || again.SecurityFloor["rootfs"] == 99 {
		t.Fatalf("a change to a copy reached the kept state: %+v", again)
	}

	// Saved by this Slots: kept as written.
	again.LastFailure = "noted"
	if err := s.save(again); err != nil {
		t.Fatal(err)
	}
	if st, n := state(); n != 0 || st.LastFailure != "noted" {
		t.Errorf("after a save: %+v, read %d bytes, want it kept", st, n)
	}

	// Replaced by someone else: read again.
	path := filepath.Join(d.slotsDir, stateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	replaced := strings.Replace(string(b), `"noted"`, `"other"`, 1)
	if err := writeFileAtomic(OSFS{}, path, []byte(replaced)); err != nil {
		t.Fatal(err)
	}
	if st, n := state(); n == 0 || st.LastFailure != "other" {
		t.Errorf("after a replacement: %+v, read %d bytes, want the new file read", st, n)
	}

	// Rewritten in place, same size, times put back: its change time still moves.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // a tick of the kernel's file clock
	if err := os.WriteFile(path, []byte(strings.Replace(replaced, `"other"`, `"again"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if st, n := state(); n == 0 || st.LastFailure != "again" {
		t.Errorf("after a write in place: %+v, read %d bytes, want the file read", st, n)
	}

	// Removed: an unprovisioned state, as from a new Slots.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if st, _ := state(); st.Committed != "" {
		t.Errorf("after the file was removed: %+v, want an empty state", st)
	}
}
