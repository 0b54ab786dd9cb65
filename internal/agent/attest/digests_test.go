//go:build linux

package attest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/agent/durable"
)

// TestFileDigestsHashOnceAndAgainOnChange: an unchanged, settled file is hashed once; a write
// in place (even with its modification time put back), a file renamed over the path and a file
// changed within Settle of being examined are hashed again.
func TestFileDigestsHashOnceAndAgainOnChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rootfs")
	if err := os.WriteFile(path, []byte("release 1.0.0 image"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour) // every file looks settled
	c := &FileDigests{known: durable.Known[[]byte]{Now: func() time.Time { return later }}}
	digest := func() []byte {
		t.Helper()
		got, err := c.Digest(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := FileDigest(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Digest = %x, the file's SHA-256 is %x", got, want)
		}
		return got
	}
	first := digest()
	// Prove the second call does not hash: a remembered digest comes back as it was stored.
	marked := bytes.Repeat([]byte{0xee}, 32)
	version := func() durable.Version {
		t.Helper()
		v, ok := durable.VersionOf(mustStat(t, path))
		if !ok {
			t.Fatal("no version for a regular file on Linux")
		}
		return v
	}
	if _, ok := c.known.Get(path, version()); !ok {
		t.Fatal("a settled file's digest was not remembered")
	}
	c.known.Put(path, version(), later, marked)
	if got, err := c.Digest(path); err != nil || !bytes.Equal(got, marked) {
		t.Fatalf("unchanged file: got %x, %v; want the remembered digest", got, err)
	}

	// The kernel's file times move by a clock tick; wait for one so the change is visible.
	time.Sleep(50 * time.Millisecond)
	st, _ := os.Stat(path)
	if err := os.WriteFile(path, []byte("release 6.6.6 image"), 0o600); err != nil { // same size
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if second := digest(); bytes.Equal(second, first) {
		t.Fatal("the content changed but the digest did not")
	}

	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("release 7.7.7 image"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	digest()

	// With the real clock, a file changed just now is not remembered: it is hashed every time
	// until its times are Settle old.
	c.known = durable.Known[[]byte]{}
	digest()
	if _, ok := c.known.Get(path, version()); ok {
		t.Fatal("a file changed within Settle was remembered")
	}
}

func TestFileDigestsMissingFile(t *testing.T) {
	var c FileDigests
	if _, err := c.Digest(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Fatal("a missing file has no digest")
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
