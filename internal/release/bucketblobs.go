package release

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob" // s3:// buckets (AWS S3 and S3-compatible stores through endpoint=)
	"gocloud.dev/gcerrors"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

// bucketBlobs keeps blobs in a gocloud.dev bucket as sha256/<hex>. An upload streams to
// tmp/<random> while it is hashed, then is copied (inside the store) to its name and the
// temporary object deleted, so a name only ever holds complete bytes.
type bucketBlobs struct {
	bucket *blob.Bucket
	kind   string
	tmp    string
}

func openBucket(ctx context.Context, spec, tmp string) (*bucketBlobs, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("release.openBucket: %w", public.Errorf(public.Invalid, "--blobs is not a URL: %v", err))
	}
	b, err := blob.OpenBucket(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("release.openBucket: %w", public.Errorf(public.Invalid, "cannot open the blob bucket %s://%s: %v", u.Scheme, u.Host, err))
	}
	return &bucketBlobs{bucket: b, kind: u.Scheme, tmp: tmp}, nil
}

func (b *bucketBlobs) Kind() string { return b.kind }

func key(sum string) string { return "sha256/" + sum }

func (b *bucketBlobs) Put(ctx context.Context, r io.Reader, max int64) (string, int64, error) {
	var rnd [16]byte
	rand.Read(rnd[:])
	tmp := "tmp/" + hex.EncodeToString(rnd[:])
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.bucket.NewWriter(wctx, tmp, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return "", 0, fmt.Errorf("release.bucketBlobs.Put: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, max+1))
	if err == nil && n > max {
		err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	if err != nil {
		cancel() // abandons the write: nothing is stored under tmp
		w.Close()
		return "", 0, fmt.Errorf("release.bucketBlobs.Put: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", 0, fmt.Errorf("release.bucketBlobs.Put: %w", err)
	}
	defer b.bucket.Delete(context.WithoutCancel(ctx), tmp)
	sum := hex.EncodeToString(h.Sum(nil))
	exists, err := b.bucket.Exists(ctx, key(sum))
	if err == nil && !exists {
		err = b.bucket.Copy(ctx, key(sum), tmp, nil)
	}
	if err != nil {
		return "", 0, fmt.Errorf("release.bucketBlobs.Put: %w", err)
	}
	return sum, n, nil
}

func (b *bucketBlobs) Open(ctx context.Context, sum string) (Blob, error) {
	if !deviceapi.SHA256Re.MatchString(sum) {
		return nil, fmt.Errorf("release.bucketBlobs.Open: %w", os.ErrNotExist)
	}
	r, err := b.bucket.NewReader(ctx, key(sum), nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("release.bucketBlobs.Open: %w (%w)", os.ErrNotExist, err)
	}
	if err != nil {
		return nil, fmt.Errorf("release.bucketBlobs.Open: %w", err)
	}
	return r, nil
}

func (b *bucketBlobs) Local(ctx context.Context, sum string) (string, func(), error) {
	p, done, err := localCopy(ctx, b, b.tmp, sum)
	if err != nil {
		return "", nil, fmt.Errorf("release.bucketBlobs.Local: %w", err)
	}
	return p, done, nil
}

// Close closes the bucket.
func (b *bucketBlobs) Close() error { return b.bucket.Close() }
