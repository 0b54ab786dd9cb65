package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/store"
)

// ErrTooLarge means an upload exceeded the size limit.
var ErrTooLarge = errors.New("release: upload exceeds the size limit")

// BlobStore keeps content-addressed blobs (images and deltas) by their hex SHA-256. A blob is
// either complete or absent, uploads stream through without being held whole in memory, and
// storing the same bytes twice keeps one copy. Three kinds exist (OpenBlobStore): a folder under
// the data folder (one machine), PostgreSQL itself and a gocloud.dev bucket (S3), the last two
// reached by every replica.
type BlobStore interface {
	// Put stores what r yields, refusing more than max bytes (ErrTooLarge), and returns its hex
	// SHA-256 and length.
	Put(ctx context.Context, r io.Reader, max int64) (sum string, n int64, err error)
	// Open opens a blob for reading; os.ErrNotExist when there is none.
	Open(ctx context.Context, sum string) (Blob, error)
	// Local returns the path of a file holding the blob, for mapping it into memory (a delta's
	// base); done removes it if it was copied there for the purpose.
	Local(ctx context.Context, sum string) (path string, done func(), err error)
	// Kind names the store for logs: "file", "postgres" or the bucket's scheme.
	Kind() string
}

// Blob is an open blob: seekable (HTTP ranges) and of known size.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
}

// Blob store kinds for OpenBlobStore.
const (
	BlobsFile     = "file"
	BlobsPostgres = "postgres"
)

// OpenBlobStore opens the blob store an operator chose with `rampart server --blobs`: "file"
// (dir, on this machine; the default with SQLite), "postgres" (in the database st, which must be
// PostgreSQL; the default with PostgreSQL) or a gocloud.dev bucket URL such as
// s3://BUCKET?region=R&endpoint=URL. tmp is a local folder for the copies Local makes.
func OpenBlobStore(ctx context.Context, spec, dir, tmp string, st *store.Store) (BlobStore, error) {
	switch {
	case spec == BlobsFile:
		return OpenBlobs(dir)
	case spec == BlobsPostgres:
		if st.Dialect() != "postgres" {
			return nil, fmt.Errorf("release.OpenBlobStore: %w", public.Errorf(public.Invalid, "--blobs postgres needs --database postgres://..."))
		}
		return newDBBlobs(st, tmp)
	case strings.Contains(spec, "://"):
		return openBucket(ctx, spec, tmp)
	}
	return nil, fmt.Errorf("release.OpenBlobStore: %w", public.Errorf(public.Invalid, "--blobs %q is not file, postgres or a bucket URL such as s3://BUCKET?region=R", spec))
}

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

// Kind is "file".
func (b *Blobs) Kind() string { return BlobsFile }

// Path is where the blob with the given hex SHA-256 lives.
func (b *Blobs) Path(sum string) string { return filepath.Join(b.dir, "sha256", sum) }

// Put stores what r yields, refusing more than max bytes, and returns its
// hex SHA-256 and length.
func (b *Blobs) Put(_ context.Context, r io.Reader, max int64) (string, int64, error) {
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
func (b *Blobs) Open(_ context.Context, sum string) (Blob, error) {
	if !deviceapi.SHA256Re.MatchString(sum) {
		return nil, fmt.Errorf("release.Blobs.Open: %w", os.ErrNotExist)
	}
	f, err := os.Open(b.Path(sum))
	if err != nil {
		return nil, fmt.Errorf("release.Blobs.Open: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("release.Blobs.Open: %w", err)
	}
	return fileBlob{f, fi.Size()}, nil
}

type fileBlob struct {
	*os.File
	size int64
}

func (f fileBlob) Size() int64 { return f.size }

// Local is the blob's own file.
func (b *Blobs) Local(_ context.Context, sum string) (string, func(), error) {
	if !deviceapi.SHA256Re.MatchString(sum) {
		return "", nil, fmt.Errorf("release.Blobs.Local: %w", os.ErrNotExist)
	}
	return b.Path(sum), func() {}, nil
}

// localCopy copies a blob from a remote store into a temporary file under tmp.
func localCopy(ctx context.Context, bs BlobStore, tmp, sum string) (string, func(), error) {
	src, err := bs.Open(ctx, sum)
	if err != nil {
		return "", nil, err
	}
	defer src.Close()
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp(tmp, "blob-*")
	if err != nil {
		return "", nil, err
	}
	done := func() { os.Remove(f.Name()) }
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != sum {
		err = fmt.Errorf("blob %s came back with other bytes", sum)
	}
	if err != nil {
		done()
		return "", nil, err
	}
	return f.Name(), done, nil
}
