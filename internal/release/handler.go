package release

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store"
)

// Handler serves every tenant's image repository as static, cacheable
// files: GET /tuf/{tenant}/metadata/{file} and
// GET /tuf/{tenant}/targets/{path...} (images and deltas, with HTTP ranges
// so devices resume), each also as DIR/HASH.NAME, the name TUF clients use
// with consistent snapshots (TUF 5.7.3), and under metadata/targets/ too,
// where go-tuf's updater looks by default. Everything it serves is signed or content-addressed,
// so it needs no authentication and a CDN may cache it. Director metadata
// is per device and goes through the device API instead (DirectorFile).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tuf/{tenant}/metadata/{file}", func(w http.ResponseWriter, r *http.Request) {
		t, ok := s.tenant(w, r)
		if !ok {
			return
		}
		b, err := s.RepoFile(r.Context(), t.ID, r.PathValue("file"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		sum := sha256.Sum256(b)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
		if versioned(r.PathValue("file")) {
			// N.root.json, N.targets.json, N.snapshot.json: a version is signed once.
			w.Header().Set("Cache-Control", immutable)
		} else {
			// timestamp.json changes: a cache asks again, and an unchanged file is a 304.
			w.Header().Set("Cache-Control", "no-cache")
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
	targets := func(w http.ResponseWriter, r *http.Request) {
		t, ok := s.tenant(w, r)
		if !ok {
			return
		}
		target, hash := consistentTarget(r.PathValue("path"))
		sum, err := s.TargetBlob(r.Context(), t.ID, target)
		if err == nil && hash != "" && hash != sum {
			err = fmt.Errorf("%w: %s is not the hash of %s", ErrNotFound, hash, target)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		f, err := s.cfg.Blobs.Open(r.Context(), sum)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		// Content-addressed: the bytes behind a name never change, so any cache may keep them
		// and answer conditional requests by the ETag (the blob's SHA-256) alone.
		w.Header().Set("Cache-Control", immutable)
		w.Header().Set("ETag", `"`+sum+`"`)
		http.ServeContent(w, r, "", time.Time{}, f)
	}
	mux.HandleFunc("GET /tuf/{tenant}/targets/{path...}", targets)
	// go-tuf's updater, left at its defaults, looks for targets under <metadata URL>/targets.
	mux.HandleFunc("GET /tuf/{tenant}/metadata/targets/{path...}", targets)
	return mux
}

func (s *Service) tenant(w http.ResponseWriter, r *http.Request) (store.Tenant, bool) {
	t, err := s.cfg.Store.TenantByName(r.Context(), r.PathValue("tenant"))
	if err != nil {
		s.fail(w, r, err)
		return store.Tenant{}, false
	}
	return t, true
}

func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNotFound) || errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrNotInit) {
		http.NotFound(w, r)
		return
	}
	s.log.Error("serving the image repository failed", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// immutable is the Cache-Control of what never changes behind its name.
const immutable = "public, max-age=31536000, immutable"

// versioned reports whether a metadata file name is N.ROLE.json, a version signed once.
func versioned(name string) bool {
	n, _, ok := strings.Cut(name, ".")
	if !ok || n == "" {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// consistentTarget splits a consistent-snapshot target name DIR/HASH.NAME (TUF
// 5.7.3: the hex SHA-256 of the target file, a dot, then its name) into the
// target path DIR/NAME and the hash; any other path comes back unchanged with
// no hash. The repository lists SHA-256 only, so that is the hash a client
// puts in front.
func consistentTarget(p string) (target, hash string) {
	dir, base := path.Split(p)
	h, name, ok := strings.Cut(base, ".")
	if !ok || name == "" || !deviceapi.SHA256Re.MatchString(h) {
		return p, ""
	}
	return dir + name, h
}
