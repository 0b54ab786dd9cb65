package release

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/tuf"
)

// ErrTooLarge means an upload exceeded the size limit.
var ErrTooLarge = errors.New("release: upload exceeds the size limit")

// Blobs is a content-addressed folder: DIR/sha256/<hex>. Uploads stream to
// DIR/tmp, are hashed on the way, fsynced and renamed into place, so a blob
// is either complete or absent and never held whole in memory.
type Blobs struct {
	dir string
}

// OpenBlobs opens (creating) a blob folder.
func OpenBlobs(dir string) (*Blobs, error) {
	for _, d := range []string{filepath.Join(dir, "sha256"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("release.OpenBlobs: %w", err)
		}
	}
	return &Blobs{dir: dir}, nil
}

// Path is where the blob with the given hex SHA-256 lives.
func (b *Blobs) Path(sum string) string { return filepath.Join(b.dir, "sha256", sum) }

// Put stores what r yields, refusing more than max bytes, and returns its
// hex SHA-256 and length.
func (b *Blobs) Put(r io.Reader, max int64) (string, int64, error) {
	f, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "upload-*")
	if err != nil {
		return "", 0, fmt.Errorf("release.Blobs.Put: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, max+1))
	if err == nil && n > max {
		err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("release.Blobs.Put: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp, b.Path(sum)); err != nil {
		return "", 0, fmt.Errorf("release.Blobs.Put: %w", err)
	}
	return sum, n, nil
}

// Open opens a blob for reading.
func (b *Blobs) Open(sum string) (*os.File, error) {
	if !deviceapi.SHA256Re.MatchString(sum) {
		return nil, fmt.Errorf("release.Blobs.Open: %w", os.ErrNotExist)
	}
	f, err := os.Open(b.Path(sum))
	if err != nil {
		return nil, fmt.Errorf("release.Blobs.Open: %w", err)
	}
	return f, nil
}

// LoadOnlineKeys reads the server's online TUF keys from path, creating
// them (mode 0600) on first start.
func LoadOnlineKeys(path string) (*tuf.OnlineKeys, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := tuf.ParseOnlineKeys(b)
		if err != nil {
			return nil, false, fmt.Errorf("release.LoadOnlineKeys: %s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	k, err := tuf.GenerateOnlineKeys()
	if err != nil {
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	b, err = tuf.MarshalOnlineKeys(k)
	if err != nil {
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	return k, true, nil
}
