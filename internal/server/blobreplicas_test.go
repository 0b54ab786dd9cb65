package server_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets

	"github.com/rampartsec/rampart/internal/certpool"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/sim"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// TestReplicasOnSeveralMachines runs two replicas on one PostgreSQL database with separate data
// folders (as on two machines), sharing only the keys an operator hands every replica: the
// master key and the online TUF keys. Releases 1.0.0 and 1.1.0 (with a delta built from 1.0.0)
// are added and signed through the first; real agents enrolled through the second install both
// from it. Blobs live in PostgreSQL (--blobs postgres), in an S3 server (--blobs s3://..., an
// S3-protocol server run by the test on loopback, reached through gocloud.dev's s3blob and the
// AWS SDK as a real bucket is), or in a file:// bucket (the same gocloud code without the S3
// protocol); neither data folder holds any. The second replica serves them with the caching
// headers a CDN needs.
func TestReplicasOnSeveralMachines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		blobs func(t *testing.T) string
	}{
		{"postgres", func(*testing.T) string { return "" }}, // the default with PostgreSQL
		{"s3", s3Server},
		{"bucket", func(t *testing.T) string { return "file://" + t.TempDir() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blobs := tc.blobs(t)
			replicas(t, blobs)
			if blobs == "" {
				return
			}
			// The blobs are in the bucket: both images and the delta.
			bucket, err := blob.OpenBucket(context.Background(), blobs)
			if err != nil {
				t.Fatal(err)
			}
			defer bucket.Close()
			var keys []string
			it := bucket.List(&blob.ListOptions{Prefix: "sha256/"})
			for {
				obj, err := it.Next(context.Background())
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, obj.Key)
			}
			if len(keys) != 3 {
				t.Errorf("the bucket holds %v; want the two images and the delta", keys)
			}
		})
	}
}

// s3Server starts an S3-protocol server (gofakes3, in memory) on loopback with one bucket and
// returns the --blobs URL that reaches it as an operator reaches an S3-compatible store:
// endpoint, region and path-style addressing, credentials from the AWS environment variables.
func s3Server(t *testing.T) string {
	backend := s3mem.New()
	if err := backend.CreateBucket("rampart-blobs"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "rampart-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "rampart-test-secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	return "s3://rampart-blobs?region=us-east-1&endpoint=" + srv.URL + "&use_path_style=true"
}

func replicas(t *testing.T, blobs string) {
	ctx := context.Background()
	url := storetest.PostgresURL(t)
	a := clitest.StartFleet(t, cli.Root, func(c *server.Config) { c.Database, c.Blobs = url, blobs })
	b := clitest.StartConfig(t, func(c *server.Config) {
		c.Database, c.Blobs = url, blobs
		c.MasterKeyFile = filepath.Join(a.Dir, server.MasterKeyFile)
		c.OnlineKeysFile = filepath.Join(a.Dir, server.OnlineKeysFile)
	})
	if a.Dir == b.Dir {
		t.Fatal("the replicas share a data folder")
	}

	r := rand.New(rand.NewPCG(3, 4))
	v1 := make([]byte, 300<<10)
	for i := range v1 {
		v1[i] = byte(r.Uint32())
	}
	v2 := append(append([]byte(nil), v1...), []byte("a fix")...)
	a.Release(t, "1.0.0", v1)

	roots, err := certpool.FromFile(b.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	f := a.Sim(t, sim.Config{Server: b.URL, RootCAs: roots, Devices: 2, Interval: time.Second, WaitTimeout: time.Second, Seed: 5})
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	clitest.RunSim(t, f)

	a.Deploy(t, "1.0.0")
	testenv.WaitFor(t, "both devices running 1.0.0, downloaded from the second replica", func() bool { return f.Progress().Releases["1.0.0"] == 2 })
	a.Release(t, "1.1.0", v2)
	rel, err := a.API.GetRelease(ctx, "lamp", "1.1.0")
	if err != nil || len(rel.Deltas) != 1 {
		t.Fatalf("release 1.1.0: %+v, %v; want one delta from 1.0.0", rel, err)
	}
	a.Deploy(t, "1.1.0")
	testenv.WaitFor(t, "both devices running 1.1.0", func() bool { return f.Progress().Releases["1.1.0"] == 2 })
	if p := f.Progress(); p.FailedInstalls != 0 {
		t.Errorf("failed installs: %s", p)
	}

	for _, dir := range []string{a.Dir, b.Dir} {
		if held, _ := filepath.Glob(filepath.Join(dir, server.BlobsDir, "sha256", "*")); len(held) != 0 {
			t.Errorf("data folder %s holds blobs %v; want none outside the shared store", dir, held)
		}
	}

	// The image as a CDN in front of the second replica sees it.
	sum := sha256.Sum256(v2)
	image := b.URL + "/tuf/default/targets/images/" + hex.EncodeToString(sum[:])
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	fetch := func(h map[string]string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", image, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	resp, body := fetch(nil)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	if resp.StatusCode != 200 || string(body) != string(v2) || resp.Header.Get("ETag") != etag ||
		resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("GET image: %d, %d bytes, headers %v", resp.StatusCode, len(body), resp.Header)
	}
	if resp, _ := fetch(map[string]string{"If-None-Match": etag}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET with the ETag: %d, want 304", resp.StatusCode)
	}
	from := len(v1) - 10
	resp, body = fetch(map[string]string{"Range": fmt.Sprintf("bytes=%d-", from)})
	if resp.StatusCode != http.StatusPartialContent || string(body) != string(v2[from:]) {
		t.Errorf("ranged GET: %d %q, want 206 %q", resp.StatusCode, body, v2[from:])
	}
	meta, mbody := func() (*http.Response, []byte) {
		resp, err := hc.Get(b.URL + "/tuf/default/metadata/1.root.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		mb, _ := io.ReadAll(resp.Body)
		return resp, mb
	}()
	if meta.StatusCode != 200 || !strings.Contains(meta.Header.Get("Cache-Control"), "immutable") || meta.Header.Get("ETag") == "" || len(mbody) == 0 {
		t.Errorf("GET 1.root.json: %d, headers %v", meta.StatusCode, meta.Header)
	}
	ts, err := hc.Get(b.URL + "/tuf/default/metadata/timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	ts.Body.Close()
	if ts.StatusCode != 200 || ts.Header.Get("Cache-Control") != "no-cache" || ts.Header.Get("ETag") == "" {
		t.Errorf("GET timestamp.json: %d, headers %v", ts.StatusCode, ts.Header)
	}
}
