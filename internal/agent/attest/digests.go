package attest

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rampartsec/rampart/internal/agent/durable"
)

// FileDigests hashes files for measurement and remembers each file's digest with the version of
// the file it hashed (durable.VersionOf: device, inode, size, modification and change times), so
// that a file is hashed once per boot rather than once per check-in, and again whenever it
// changes. A digest is remembered only when the file's version was settled as it was read
// (durable.Version.Settled): a file changed a moment before is hashed every time until it
// settles. Where no version can be read, every call hashes. The zero value is ready; a
// FileDigests is not safe for concurrent use.
type FileDigests struct {
	m map[string]fileDigest
	// now is the clock a version is settled against; time.Now when nil (tests set it).
	now func() time.Time
}

type fileDigest struct {
	id     durable.Version
	digest []byte
}

// Digest returns the SHA-256 of the file at path (FileDigest), hashing it only when it is not
// the same file, unchanged, as the last time.
func (c *FileDigests) Digest(path string) ([]byte, error) {
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	examined := now()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("attest.FileDigest: %w", err)
	}
	defer f.Close()
	// The identity is taken from the open file before it is read: a change made while it is
	// read changes the change time, so the next call hashes it again.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("attest.FileDigest: %s: %w", path, err)
	}
	id, ok := durable.VersionOf(st)
	if ok {
		if d, hit := c.m[path]; hit && d.id == id {
			return d.digest, nil
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("attest.FileDigest: %s: %w", path, err)
	}
	digest := h.Sum(nil)
	delete(c.m, path)
	if ok && id.Settled(examined) {
		if c.m == nil {
			c.m = map[string]fileDigest{}
		}
		c.m[path] = fileDigest{id: id, digest: digest}
	}
	return digest, nil
}
