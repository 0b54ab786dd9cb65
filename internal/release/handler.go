package release

import (
	"errors"
	"net/http"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// Handler serves every tenant's image repository as static, cacheable
// files: GET /tuf/{tenant}/metadata/{file} and
// GET /tuf/{tenant}/targets/{path...} (images and deltas, with HTTP ranges
// so devices resume). Everything it serves is signed or content-addressed,
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
		// Versioned files never change; the unversioned ones do.
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	})
	mux.HandleFunc("GET /tuf/{tenant}/targets/{path...}", func(w http.ResponseWriter, r *http.Request) {
		t, ok := s.tenant(w, r)
		if !ok {
			return
		}
		sum, err := s.TargetBlob(r.Context(), t.ID, r.PathValue("path"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		f, err := s.cfg.Blobs.Open(sum)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		http.ServeContent(w, r, "", time.Time{}, f)
	})
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
