package release

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store/storetest"
)

// BenchmarkBlobServe serves a 4 MiB blob with http.ServeContent from each kind of blob store,
// beside the ceiling of the same run: ServeContent over the bytes in memory. Throughput is
// b.SetBytes; compare each kind's MB/s with the ceiling's.
func BenchmarkBlobServe(b *testing.B) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("rampart blob bench "), (4<<20)/19)
	serve := func(b *testing.B, open func() (io.ReadSeeker, func())) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			r, done := open()
			w := httptest.NewRecorder()
			w.Body = nil // discard: measure the store and ServeContent, not a buffer's growth
			http.ServeContent(w, httptest.NewRequest("GET", "/x", nil), "", time.Time{}, r)
			done()
		}
	}
	b.Run("ceiling=memory", func(b *testing.B) {
		serve(b, func() (io.ReadSeeker, func()) { return bytes.NewReader(data), func() {} })
	})
	for _, k := range []struct {
		name string
		open func(b *testing.B) BlobStore
	}{
		{"file", func(b *testing.B) BlobStore {
			bs, err := OpenBlobs(filepath.Join(b.TempDir(), "blobs"))
			if err != nil {
				b.Fatal(err)
			}
			return bs
		}},
		{"postgres", func(b *testing.B) BlobStore {
			bs, err := OpenBlobStore(ctx, BlobsPostgres, "", b.TempDir(), storetest.Open(b, "postgres"))
			if err != nil {
				b.Fatal(err)
			}
			return bs
		}},
		{"memblob", func(b *testing.B) BlobStore {
			// memblob registers in blobs_test.go.
			bs, err := OpenBlobStore(ctx, "mem://", "", b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			return bs
		}},
	} {
		b.Run(k.name, func(b *testing.B) {
			bs := k.open(b)
			sum, _, err := bs.Put(ctx, bytes.NewReader(data), int64(len(data)))
			if err != nil {
				b.Fatal(err)
			}
			serve(b, func() (io.ReadSeeker, func()) {
				f, err := bs.Open(ctx, sum)
				if err != nil {
					b.Fatal(err)
				}
				return f, func() { f.Close() }
			})
		})
	}
}
