package server

import (
	"crypto/tls"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	handshakes *prometheus.CounterVec
	// series holds each route and status code's two series once looked up (routeCode →
	// routeSeries): finding them in the vectors hashes the label values under a lock and
	// allocates, on every request. Routes are the mux's patterns and codes HTTP's, so it stays
	// small; nothing deletes series from the vectors.
	series sync.Map
}

type routeCode struct {
	route string
	code  int
}

type routeSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// seriesFor returns the request counter and latency histogram of route and code.
func (m *metrics) seriesFor(route string, code int) routeSeries {
	k := routeCode{route, code}
	if s, ok := m.series.Load(k); ok {
		return s.(routeSeries)
	}
	s := routeSeries{requests: m.requests.WithLabelValues(route, strconv.Itoa(code)), duration: m.duration.WithLabelValues(route)}
	m.series.Store(k, s)
	return s
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rampart_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_tls_handshakes_total", Help: "TLS handshakes completed, by whether they resumed a session.",
		}, []string{"resumed"}),
	}
	reg.MustRegister(m.requests, m.duration, m.handshakes)
	return m
}

// countHandshake is the TLS configuration's VerifyConnection: it counts each handshake, full or
// resumed, and refuses none (the device API checks client certificates per request).
func (m *metrics) countHandshake(cs tls.ConnectionState) error {
	m.handshakes.WithLabelValues(strconv.FormatBool(cs.DidResume)).Inc()
	return nil
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts requests by the route pattern that served them (never the raw path, which
// would let clients create unbounded label values).
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		s := m.seriesFor(route, sw.code)
		s.requests.Inc()
		s.duration.Observe(time.Since(start).Seconds())
	})
}
