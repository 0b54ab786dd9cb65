package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	_ "gocloud.dev/blob/fileblob" // file:// buckets: the gocloud interface s3:// goes through
	_ "gocloud.dev/blob/memblob"  // mem:// buckets

	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestBlobStores runs every kind of blob store through the same checks: what goes in comes out
// by its SHA-256, whole and by ranges (seeks, as HTTP ranges do), across chunk boundaries; the
// same bytes twice are one blob; an oversized upload leaves nothing; an unknown blob is
// os.ErrNotExist; Local gives a file with the bytes. No S3-compatible server runs here, so the
// bucket kind is tested through gocloud.dev's interface with its file:// and mem:// drivers,
// the same code s3:// URLs take.
func TestBlobStores(t *testing.T) {
	ctx := context.Background()
	kinds := []struct {
		name string
		open func(t *testing.T) BlobStore
	}{
		{"file", func(t *testing.T) BlobStore {
			b, err := OpenBlobStore(ctx, BlobsFile, filepath.Join(t.TempDir(), "blobs"), t.TempDir(), storetest.Open(t, "sqlite"))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"postgres", func(t *testing.T) BlobStore {
			b, err := OpenBlobStore(ctx, BlobsPostgres, "", t.TempDir(), storetest.Open(t, "postgres"))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"fileblob bucket", func(t *testing.T) BlobStore {
			b, err := OpenBlobStore(ctx, "file://"+t.TempDir(), "", t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"memblob bucket", func(t *testing.T) BlobStore {
			b, err := OpenBlobStore(ctx, "mem://", "", t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 2*BlobChunkSize+12345)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	want := sha256.Sum256(data)
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			bs := k.open(t)
			sum, n, err := bs.Put(ctx, bytes.NewReader(data), int64(len(data)))
			if err != nil || sum != hex.EncodeToString(want[:]) || n != int64(len(data)) {
				t.Fatalf("Put = %s, %d, %v; want %x, %d", sum, n, err, want, len(data))
			}
			if again, _, err := bs.Put(ctx, bytes.NewReader(data), int64(len(data))); err != nil || again != sum {
				t.Fatalf("the same bytes again: %s, %v", again, err)
			}
			if _, _, err := bs.Put(ctx, bytes.NewReader(data[:100]), 99); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("oversized Put: %v, want ErrTooLarge", err)
			}
			small := sha256.Sum256(data[:100])
			if _, err := bs.Open(ctx, hex.EncodeToString(small[:])); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the refused upload is readable, or the error is not os.ErrNotExist: %v", err)
			}
			if _, err := bs.Open(ctx, "../../etc/passwd"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a name that is no hash: %v, want os.ErrNotExist", err)
			}

			b, err := bs.Open(ctx, sum)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Size() != int64(len(data)) {
				t.Fatalf("Size = %d, want %d", b.Size(), len(data))
			}
			got, err := io.ReadAll(b)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("whole read: %d bytes, %v; want the %d bytes put", len(got), err, len(data))
			}
			// Ranges, as http.ServeContent reads them: one across a chunk boundary, one at the end.
			for _, rg := range []struct{ off, n int64 }{{BlobChunkSize - 10, 20}, {int64(len(data)) - 7, 7}, {0, 1}} {
				if end, err := b.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
					t.Fatalf("Seek to the end = %d, %v", end, err)
				}
				if _, err := b.Seek(rg.off, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				part := make([]byte, rg.n)
				if _, err := io.ReadFull(b, part); err != nil || !bytes.Equal(part, data[rg.off:rg.off+rg.n]) {
					t.Fatalf("range %d+%d: %v", rg.off, rg.n, err)
				}
			}

			path, done, err := bs.Local(ctx, sum)
			if err != nil {
				t.Fatal(err)
			}
			local, err := os.ReadFile(path)
			done()
			if err != nil || !bytes.Equal(local, data) {
				t.Fatalf("Local copy: %d bytes, %v", len(local), err)
			}
		})
	}
}

// TestBlobStoreChoice: --blobs postgres needs PostgreSQL, and an unknown kind is refused; each
// with its sentence.
func TestBlobStoreChoice(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, "sqlite")
	for _, tc := range []struct{ spec, want string }{
		{"postgres", "--blobs postgres needs --database postgres://..."},
		{"nfs", `--blobs "nfs" is not file, postgres or a bucket URL such as s3://BUCKET?region=R`},
	} {
		_, err := OpenBlobStore(ctx, tc.spec, t.TempDir(), t.TempDir(), st)
		if msg, ok := public.Message(err); !ok || msg != tc.want {
			t.Errorf("--blobs %s: %v; sentence %q, want %q", tc.spec, err, msg, tc.want)
		}
	}
}

// TestDBBlobsSweep: an upload a replica abandoned (its chunks stored, no blob naming them) is
// swept once old enough; a finished blob stays.
func TestDBBlobsSweep(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, "postgres")
	bs, err := OpenBlobStore(ctx, BlobsPostgres, "", t.TempDir(), st)
	if err != nil {
		t.Fatal(err)
	}
	sum, _, err := bs.Put(ctx, bytes.NewReader([]byte("kept")), 100)
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.BeginBlobUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutBlobChunk(ctx, id, 0, []byte("abandoned")); err != nil {
		t.Fatal(err)
	}
	if n, err := st.SweepBlobUploads(ctx, st.Now().Add(-abandonedUpload)); err != nil || n != 0 {
		t.Fatalf("a fresh upload was swept: %d, %v", n, err)
	}
	if n, err := st.SweepBlobUploads(ctx, st.Now().Add(abandonedUpload)); err != nil || n != 1 {
		t.Fatalf("sweep of the abandoned upload = %d, %v; want 1", n, err)
	}
	var chunks int
	if err := storetest.DB(st).QueryRow(`SELECT COUNT(*) FROM blob_chunks`).Scan(&chunks); err != nil || chunks != 1 {
		t.Fatalf("%d chunks left, %v; want the kept blob's 1", chunks, err)
	}
	if _, err := st.Blob(ctx, sum); err != nil {
		t.Fatalf("the finished blob: %v", err)
	}
}
