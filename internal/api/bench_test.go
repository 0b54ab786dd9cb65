package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// Run with:
//
//	go test -run '^$' -bench . -benchtime 3s ./internal/api/
//
// BenchmarkCeiling is the bare net/http ceiling on the same loopback, client and body size;
// read each figure as a ratio to it.

func benchGet(b *testing.B, srv *httptest.Server, path, tok string) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkCeiling(b *testing.B) {
	h := newHarness(b, "sqlite")
	c := h.client(h.admin)
	c.CreateProduct(context.Background(), client.CreateProductRequest{Name: "thermostat"})
	_, body := h.raw("GET", "/api/v1/products/thermostat", h.admin, "", "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	defer srv.Close()
	srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.ResetTimer()
	benchGet(b, srv, "/", "")
}

func BenchmarkAdminRead(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			h := newHarness(b, kind)
			if _, err := h.client(h.admin).CreateProduct(context.Background(), client.CreateProductRequest{Name: "thermostat"}); err != nil {
				b.Fatal(err)
			}
			h.srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			b.ResetTimer()
			benchGet(b, h.srv, "/api/v1/products/thermostat", h.admin)
		})
	}
}

func BenchmarkProductCreate(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			h := newHarness(b, kind)
			h.srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			c := h.client(h.admin)
			var n atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					name := fmt.Sprintf("p%d", n.Add(1))
					if _, err := c.CreateProduct(context.Background(), client.CreateProductRequest{Name: name}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
