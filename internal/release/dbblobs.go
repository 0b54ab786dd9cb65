package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store"
)

// BlobChunkSize is the size of each chunk a blob is kept in when blobs live in PostgreSQL: an
// upload or a download holds one chunk in memory at a time.
const BlobChunkSize = 1 << 20

// abandonedUpload is how old an unfinished upload must be before a Put sweeps it: older than any
// upload still streaming.
const abandonedUpload = 24 * time.Hour

// dbBlobs keeps blobs in the database, in chunks (store.BeginBlobUpload and the rest).
type dbBlobs struct {
	st  *store.Store
	tmp string
}

func newDBBlobs(st *store.Store, tmp string) (*dbBlobs, error) {
	return &dbBlobs{st: st, tmp: tmp}, nil
}

func (b *dbBlobs) Kind() string { return BlobsPostgres }

func (b *dbBlobs) Put(ctx context.Context, r io.Reader, max int64) (string, int64, error) {
	if _, err := b.st.SweepBlobUploads(ctx, b.st.Now().Add(-abandonedUpload)); err != nil {
		return "", 0, fmt.Errorf("release.dbBlobs.Put: %w", err)
	}
	id, err := b.st.BeginBlobUpload(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("release.dbBlobs.Put: %w", err)
	}
	sum, n, err := b.put(ctx, id, r, max)
	if err != nil {
		// The upload's chunks go; a failure here leaves them to the next sweep.
		b.st.AbortBlobUpload(context.WithoutCancel(ctx), id)
		return "", 0, fmt.Errorf("release.dbBlobs.Put: %w", err)
	}
	return sum, n, nil
}

func (b *dbBlobs) put(ctx context.Context, id string, r io.Reader, max int64) (string, int64, error) {
	h := sha256.New()
	buf := make([]byte, BlobChunkSize)
	lr := io.LimitReader(r, max+1)
	var n, seq int64
	for {
		k, err := io.ReadFull(lr, buf)
		if k > 0 {
			n += int64(k)
			if n > max {
				return "", 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
			}
			h.Write(buf[:k])
			if err := b.st.PutBlobChunk(ctx, id, seq, buf[:k]); err != nil {
				return "", 0, err
			}
			seq++
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return "", 0, err
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := b.st.FinishBlobUpload(ctx, store.StoredBlob{SHA256: sum, UploadID: id, Length: n, ChunkSize: BlobChunkSize}); err != nil {
		return "", 0, err
	}
	return sum, n, nil
}

func (b *dbBlobs) Open(ctx context.Context, sum string) (Blob, error) {
	if !deviceapi.SHA256Re.MatchString(sum) {
		return nil, fmt.Errorf("release.dbBlobs.Open: %w", os.ErrNotExist)
	}
	sb, err := b.st.Blob(ctx, sum)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("release.dbBlobs.Open: %w (%w)", os.ErrNotExist, err)
	}
	if err != nil {
		return nil, fmt.Errorf("release.dbBlobs.Open: %w", err)
	}
	return &dbBlob{ctx: ctx, st: b.st, b: sb, seq: -1}, nil
}

func (b *dbBlobs) Local(ctx context.Context, sum string) (string, func(), error) {
	p, done, err := localCopy(ctx, b, b.tmp, sum)
	if err != nil {
		return "", nil, fmt.Errorf("release.dbBlobs.Local: %w", err)
	}
	return p, done, nil
}

// dbBlob reads a blob chunk by chunk, holding one chunk at a time.
type dbBlob struct {
	ctx context.Context
	st  *store.Store
	b   store.StoredBlob
	off int64
	seq int64 // the chunk in buf; -1 for none
	buf []byte
}

func (r *dbBlob) Size() int64 { return r.b.Length }

func (r *dbBlob) Read(p []byte) (int, error) {
	if r.off >= r.b.Length {
		return 0, io.EOF
	}
	seq := r.off / r.b.ChunkSize
	if seq != r.seq {
		buf, err := r.st.BlobChunk(r.ctx, r.b.UploadID, seq, r.buf)
		if err != nil {
			return 0, fmt.Errorf("release: blob %s chunk %d: %w", r.b.SHA256, seq, err)
		}
		r.buf, r.seq = buf, seq
	}
	at := r.off - seq*r.b.ChunkSize
	if at >= int64(len(r.buf)) {
		return 0, fmt.Errorf("release: blob %s chunk %d is shorter than its place says", r.b.SHA256, seq)
	}
	n := copy(p, r.buf[at:])
	r.off += int64(n)
	return n, nil
}

func (r *dbBlob) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.b.Length
	default:
		return 0, errors.New("release: seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("release: seek before the start")
	}
	r.off = offset
	return offset, nil
}

func (r *dbBlob) Close() error { r.buf = nil; return nil }
