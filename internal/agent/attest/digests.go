package attest

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/rampartsec/rampart/internal/agent/durable"
)

// FileDigests hashes files for measurement and remembers each file's digest with the version of
// the file it hashed (durable.VersionOf: device, inode, size, modification and change times), so
// that a file is hashed once per boot rather than once per check-in, and again whenever it
// changes. A digest is remembered only when the file's version was settled as it was read
// (durable.Version.Settled): a file changed a moment before is hashed every time until it
// settles (durable.Known). Where no version can be read, every call hashes. The zero value is
// ready.
type FileDigests struct {
	// Shared, when set, is where the digests are kept rather than in FileDigests' own memo:
	// the agent shares one per boot with the updater's check of the committed slot
	// (update.Slots.UseDigests), which reads the SHA-256 of the same files.
	Shared *durable.Known[[]byte]
	known  durable.Known[[]byte]
}

// Digest returns the SHA-256 of the file at path (FileDigest), hashing it only when it is not
// the same file, unchanged, as the last time.
func (c *FileDigests) Digest(path string) ([]byte, error) {
	known := c.Shared
	if known == nil {
		known = &c.known
	}
	examined := known.Examined()
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
		if d, hit := known.Get(path, id); hit {
			return d, nil
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("attest.FileDigest: %s: %w", path, err)
	}
	digest := h.Sum(nil)
	if ok {
		known.Put(path, id, examined, digest)
	} else {
		known.Forget(path)
	}
	return digest, nil
}
