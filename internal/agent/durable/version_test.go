//go:build linux

package durable

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestVersionChangesWithTheContent: a write in place of the same size with the modification
// time put back, a rename over the path and a permission change each give another version; an
// untouched file keeps its version; a file changed within Settle is not settled.
func TestVersionChangesWithTheContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rootfs")
	if err := os.WriteFile(path, []byte("release 1.0.0"), 0o600); err != nil {
		t.Fatal(err)
	}
	version := func() Version {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := VersionOf(fi)
		if !ok {
			t.Fatal("no version for a regular file on Linux")
		}
		return v
	}
	v1 := version()
	if version() != v1 {
		t.Fatal("an untouched file changed version")
	}
	if v1.Settled(time.Now()) {
		t.Fatal("a file written just now is settled")
	}
	if !v1.Settled(time.Now().Add(Settle + time.Second)) {
		t.Fatal("the file is not settled Settle after its last change")
	}
	changes := []struct {
		name   string
		change func() error
	}{
		{"write in place, times put back", func() error {
			fi, _ := os.Stat(path)
			if err := os.WriteFile(path, []byte("release 6.6.6"), 0o600); err != nil {
				return err
			}
			return os.Chtimes(path, fi.ModTime(), fi.ModTime())
		}},
		{"rename over", func() error {
			other := filepath.Join(dir, "other")
			if err := os.WriteFile(other, []byte("release 7.7.7"), 0o600); err != nil {
				return err
			}
			return os.Rename(other, path)
		}},
		{"permissions", func() error { return os.Chmod(path, 0o644) }},
	}
	for _, c := range changes {
		before := version()
		time.Sleep(50 * time.Millisecond) // a tick of the kernel's file clock
		if err := c.change(); err != nil {
			t.Fatal(err)
		}
		if version() == before {
			t.Errorf("%s: the version did not change", c.name)
		}
	}
	if _, ok := VersionOf(mustStat(t, dir)); ok {
		t.Error("a folder has a version")
	}
}

func mustStat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}
