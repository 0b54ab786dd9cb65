// Package server assembles and runs the Rampart service: storage, the admin API, health and
// metrics endpoints, TLS, bootstrap of the first tenant and token, and graceful shutdown. Only
// cmd/rampart (through the CLI's server verb), the demo and tests import it.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/rampartsec/rampart/internal/api"
	"github.com/rampartsec/rampart/internal/backup"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/ca/keeper"
	"github.com/rampartsec/rampart/internal/console"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/release"
	"github.com/rampartsec/rampart/internal/sso"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/tasks"
	"github.com/rampartsec/rampart/internal/token"
	"github.com/rampartsec/rampart/internal/tuf"
	"github.com/rampartsec/rampart/internal/wake"
)

// Config is everything `rampart server` takes.
type Config struct {
	DataDir  string // SQLite database, blobs, service CA, first admin token
	Listen   string // HOST:PORT
	Database string // postgres://... ; empty for SQLite under DataDir
	TLSCert  string // optional real certificate
	TLSKey   string
	// MasterKeyFile holds the 32-byte key-encryption key (hex) that seals tenant CA keys; every
	// replica sharing a database needs the same one. Default: DataDir/master.key, created on
	// first start.
	MasterKeyFile string
	// OnlineKeysFile holds the online TUF keys (snapshot, timestamp, director); every replica
	// sharing a database needs the same one. Default: DataDir/tuf-online-keys.json, created on
	// first start.
	OnlineKeysFile string
	// Blobs is where images and deltas live (release.OpenBlobStore): "file" (DataDir/blobs),
	// "postgres" (in the database) or a gocloud.dev bucket URL (s3://...). Empty: "file" with
	// SQLite, "postgres" with PostgreSQL, so that replicas on several machines share them.
	Blobs string
	// DeviceRate and AddrRate are the device API's requests per second per device and per client
	// address; 0 turns a limit off. `rampart server` passes DefaultDeviceRate and
	// DefaultAddrRate unless told otherwise.
	DeviceRate, AddrRate float64
	Logger               *slog.Logger
	// Ready, when set, receives the bound address once the server accepts connections.
	Ready func(addr net.Addr)
	// ShutdownTimeout bounds the graceful drain; 15 s when zero.
	ShutdownTimeout time.Duration
	// TrustDomainSuffix makes each tenant's SPIFFE trust domain <tenant>.<suffix>, fixed when
	// the tenant's CA is made. Empty: the server's own DNS name (the first name with a dot in its
	// TLS certificate), else ca.DefaultTrustDomainSuffix.
	TrustDomainSuffix string
	// DefaultTenant names the tenant created on first start; "default" when empty.
	DefaultTenant string
	// StepInterval is how often active deployments are evaluated; DeploymentStepInterval when
	// zero.
	StepInterval time.Duration
	// Now is the storage clock (deployment soak times and deadlines, audit times); time.Now when
	// nil. Tests move it to cross a deadline without waiting.
	Now func() time.Time
	// TUFExpiry is the lifetime of the update metadata the server signs (tuf.DefaultExpiry when
	// zero: the timestamp and each device's director metadata 24 h). Tests shorten one role to
	// show that a device refuses it once expired.
	TUFExpiry tuf.Expiry
	// SessionTTL is how long a web console session lasts; console.DefaultSessionTTL when zero.
	SessionTTL time.Duration
	// LiveEvery is how often the console's live pages look for changes;
	// console.DefaultLiveEvery when zero.
	LiveEvery time.Duration
	// OIDC, when set, lets operators sign in to the console with this identity provider
	// (--oidc-* flags); its discovery document is read at start.
	OIDC *sso.Config
	// OIDCClient talks to the identity provider; http.DefaultClient when nil.
	OIDCClient *http.Client
	// Restored says the database was just restored from a backup (--restored, for pg_restore):
	// before it serves, the server raises its TUF metadata versions above anything the backed-up
	// server could have signed since (release.Service.RaiseVersions). `rampart restore` says
	// the same with the file backup.RestoredFile in the data folder.
	Restored bool
}

// Server is a running Rampart service.
type Server struct {
	cfg     Config
	store   *store.Store
	log     *slog.Logger
	handler http.Handler
	tlsCert tls.Certificate
	cas     *keeper.Keeper
	// releases serves images, releases and the TUF repository.
	releases *release.Service
	// wake holds the devices waiting on /device/v1/wait; the waker wakes them.
	wake *wake.Hub
	// The long-running parts (internal/tasks), run in Run's task group beside the HTTP server.
	waker   *tasks.Waker
	stepper *tasks.Stepper
	reports *tasks.Reports
	refresh *tasks.Refresher
	// console is the web console served at /.
	console *console.Console
	// registry is what /metrics serves; metrics are the server's own series in it.
	registry *prometheus.Registry
	metrics  *metrics
	// oidc is the identity provider operators sign in with; nil without --oidc-issuer.
	oidc *sso.Provider
	// FirstStart is true when this start created the first tenant and admin token.
	FirstStart bool
}

// New opens storage, bootstraps the first tenant and prepares TLS and the handlers.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("server: --data is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultTenant == "" {
		cfg.DefaultTenant = "default"
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("server: --listen %q: %w", cfg.Listen, err)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("server: --tls-cert and --tls-key go together")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data folder: %w", err)
	}
	st, err := store.Open(ctx, store.Config{Database: cfg.Database, SQLitePath: filepath.Join(cfg.DataDir, "rampart.db"), Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, store: st, log: cfg.Logger}
	if err := s.bootstrap(ctx); err != nil {
		st.Close()
		return nil, err
	}
	kek, err := loadOrCreateMasterKey(cfg.MasterKeyFile, filepath.Join(cfg.DataDir, MasterKeyFile))
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.releases, err = s.openReleases(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := s.afterRestore(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	cert, created, err := serviceTLS(cfg.DataDir, host, cfg.TLSCert, cfg.TLSKey, time.Now())
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	if created {
		s.log.Info("created the service CA; clients trust it with --ca-file", "ca_file", filepath.Join(cfg.DataDir, ServiceCAFile))
	}
	s.tlsCert = cert
	suffix := cfg.TrustDomainSuffix
	if suffix == "" {
		suffix = defaultTrustDomainSuffix(cert)
	}
	if s.cas, err = keeper.New(st, kek, nil, suffix); err != nil {
		st.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	s.wake = wake.NewHub(1_000_000)
	s.waker = tasks.NewWaker(s.store, s.wake, s.log)
	step := cfg.StepInterval
	if step <= 0 {
		step = DeploymentStepInterval
	}
	s.stepper = tasks.NewStepper(tasks.StepperConfig{Store: s.store, Every: step, Logger: s.log, Wake: s.waker.WakeDeployment})
	s.reports = tasks.NewReports(s.store, VulnerabilityInterval, s.log)
	s.refresh = tasks.NewRefresher(s.releases, RefreshInterval, s.log)
	if cfg.OIDC != nil {
		if s.oidc, err = newOIDC(ctx, *cfg.OIDC, st, cfg.OIDCClient); err != nil {
			st.Close()
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	if s.handler, err = s.routes(); err != nil {
		st.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	return s, nil
}

// afterRestore raises the TUF metadata versions when the database was just restored
// (Config.Restored or the data folder's backup.RestoredFile), then removes the file. Raising
// twice (a start that stopped before removing it) only raises further, which devices accept;
// not raising would leave devices that fetched newer metadata refusing the server's.
func (s *Server) afterRestore(ctx context.Context) error {
	mark := filepath.Join(s.cfg.DataDir, backup.RestoredFile)
	_, err := os.Stat(mark)
	marked := err == nil
	if !marked && !s.cfg.Restored {
		return nil
	}
	if err := s.releases.RaiseVersions(ctx, tuf.RestoreMargin); err != nil {
		return fmt.Errorf("raise the TUF versions after a restore: %w", err)
	}
	s.log.Info("raised the TUF metadata versions after a restore; sign a release to raise the targets too", "margin", tuf.RestoreMargin)
	if marked {
		if err := os.Remove(mark); err != nil {
			return fmt.Errorf("remove %s: %w", mark, err)
		}
	}
	return nil
}

// newOIDC checks the OIDC settings and reads the identity provider's discovery document.
func newOIDC(ctx context.Context, cfg sso.Config, st *store.Store, hc *http.Client) (*sso.Provider, error) {
	if u, err := url.Parse(cfg.RedirectURL); err == nil && u.Path != console.OIDCCallbackPath {
		return nil, public.Errorf(public.Invalid, "--oidc-redirect-url %q must end in %s, where the console finishes the sign-in", cfg.RedirectURL, console.OIDCCallbackPath)
	}
	p, err := sso.New(ctx, cfg, sso.Deps{Logins: st, Tenants: console.Tenants{Store: st}, HTTPClient: hc, Secure: true})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Store exposes the server's store to in-process tests and the demo.
func (s *Server) Store() *store.Store { return s.store }

// Handler exposes the whole HTTP handler, for httptest and benchmarks.
func (s *Server) Handler() http.Handler { return s.handler }

// bootstrap creates the first tenant and a service-administrator token on first start and
// writes the token to DataDir/admin.token (mode 0600).
func (s *Server) bootstrap(ctx context.Context) error {
	secret, hash := token.Generate()
	t, tok, created, err := s.store.Bootstrap(ctx, s.cfg.DefaultTenant, hash)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if !created {
		return nil
	}
	path := filepath.Join(s.cfg.DataDir, AdminTokenFile)
	if err := writeFileAtomic(path, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("server: write first admin token: %w", err)
	}
	s.FirstStart = true
	s.log.Info("created the first tenant and its administrator token", "tenant", t.Name, "token_id", tok.ID, "token_file", path)
	return nil
}

func (s *Server) routes() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	s.registry = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := newMetrics(reg)
	s.metrics = m
	reg.MustRegister(newFleetCollector(s.store, s.log, s.wake.Waiting))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "rampart_db_write_transactions_total", Help: "Write transactions the store committed.",
	}, func() float64 { return float64(s.store.Commits()) }))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain")
		if err := s.store.Ping(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("database unreachable\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	a := api.New(api.Deps{Store: s.store, Logger: s.log, CAs: s.cas, Releases: s.releases, Wake: s.wake, Waker: s.waker,
		Evidence:    s.stepper.Evidence,
		DeviceLimit: api.DeviceLimit(s.cfg.DeviceRate), AddrLimit: api.AddrLimit(s.cfg.AddrRate), ApplyLimit: api.ApplyLimit(api.DefaultApplyRate)})
	mux.Handle("/api/", a)
	mux.Handle("GET /tuf/", api.RequireText(s.releases.Handler()))
	mux.Handle("/device/", a)
	mux.Handle("/research/v1/", a) // the researcher API; the portal at /research/ is the console's
	// The web console: every other path. It calls the API above in process as the signed-in
	// operator.
	con, err := console.New(console.Deps{API: a, Store: s.store, Logger: s.log, Now: s.cfg.Now, SessionTTL: s.cfg.SessionTTL, LiveEvery: s.cfg.LiveEvery,
		OIDC: s.oidc})
	if err != nil {
		return nil, err
	}
	mux.Handle("/", con)
	s.console = con
	// Device requests go straight to the API, whose own mux routes them (and cleans their
	// paths as this one would): matched here first as well, every check-in paid for two
	// routings, 3-3.5 % of the server's CPU in the check-in benchmark.
	top := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/device/") {
			a.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	return m.instrument(top), nil
}

// Console exposes the web console, for tests that walk its route table.
func (s *Server) Console() *console.Console { return s.console }

// StepDeployments runs one pass of the deployment stepper now, for tests and the demo.
func (s *Server) StepDeployments(ctx context.Context) (tasks.Pass, error) {
	return s.stepper.StepAll(ctx)
}

// CAs exposes the tenant certificate authorities to in-process benchmarks and the demo, which
// issue device certificates without going through attestation.
func (s *Server) CAs() *keeper.Keeper { return s.cas }

// Wake exposes the hub of devices waiting on /device/v1/wait, to in-process tests and the demo.
func (s *Server) Wake() *wake.Hub { return s.wake }

// TLSConfig is the server's TLS configuration. Client certificates are requested but verified
// by the device API against each tenant's CA, since the trusted CAs depend on the tenant the
// certificate names; the admin API ignores them.
func (s *Server) TLSConfig() *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{s.tlsCert}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}
	if s.metrics != nil {
		c.VerifyConnection = s.metrics.countHandshake
	}
	return c
}

// Run serves until ctx is cancelled, then drains in-flight requests and closes storage.
func (s *Server) Run(ctx context.Context) error {
	defer s.store.Close()
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		cause := err
		if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Err != nil {
			cause = oe.Err // "bind: address already in use", without the address twice
		}
		return public.Wrap(fmt.Errorf("server: listen: %w", err), public.Unavailable,
			"cannot listen on %s (%v); stop what uses it or give another --listen", s.cfg.Listen, cause)
	}
	hs := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnContext:       api.ConnContext, // a connection's requests share its verified certificate
	}
	s.log.Info("rampart server listening", "addr", "https://"+ln.Addr().String(), "database", s.store.Dialect())
	if s.cfg.Ready != nil {
		s.cfg.Ready(ln.Addr())
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := hs.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("server: %w", err)
		}
		return nil
	})
	// The long-running parts; the first to fail cancels the rest.
	for _, task := range []func(context.Context) error{s.refresh.Run, s.reports.Run, s.stepper.Run, s.waker.Run} {
		g.Go(func() error { return task(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		timeout := s.cfg.ShutdownTimeout
		if timeout == 0 {
			timeout = 15 * time.Second
		}
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		s.log.Info("shutting down")
		return hs.Shutdown(sctx)
	})
	return g.Wait()
}

// DefaultDeviceRate and DefaultAddrRate are the device API's default rate limits
// (api.DefaultDeviceRate, api.DefaultAddrRate), for `rampart server`'s flags.
const (
	DefaultDeviceRate = api.DefaultDeviceRate
	DefaultAddrRate   = api.DefaultAddrRate
)

// DeploymentStepInterval is how often active deployments are evaluated: phases open once soaked
// and the abort criteria are checked even when no device reports.
const DeploymentStepInterval = tasks.DefaultStepEvery

// OnlineKeysFile holds the server's online TUF keys (snapshot, timestamp,
// director) under the data folder; BlobsDir holds images and deltas when they are kept in
// the data folder (--blobs file); TmpDir holds the local copies of remote blobs a delta is
// built from.
const (
	OnlineKeysFile = "tuf-online-keys.json"
	BlobsDir       = "blobs"
	TmpDir         = "tmp"
)

// RefreshInterval is how often the online TUF roles are checked for
// re-signing; timestamps live a day and are re-signed at half-life.
const RefreshInterval = tasks.DefaultRefreshEvery

// VulnerabilityInterval is how often the server closes reports whose needs-more-info
// deadline has passed and samples the fleet coverage of every fix not yet complete.
const VulnerabilityInterval = tasks.DefaultReportsEvery

// openReleases loads (or creates) the online TUF keys and opens the blob store.
func (s *Server) openReleases(ctx context.Context) (*release.Service, error) {
	keys := s.cfg.OnlineKeysFile
	if keys == "" {
		keys = filepath.Join(s.cfg.DataDir, OnlineKeysFile)
	}
	online, created, err := release.LoadOnlineKeys(keys)
	if err != nil {
		return nil, err
	}
	if created {
		s.log.Info("created the online TUF keys (snapshot, timestamp, director)", "file", keys)
	}
	spec := s.cfg.Blobs
	if spec == "" {
		spec = release.BlobsFile
		if s.store.Dialect() == "postgres" {
			spec = release.BlobsPostgres
			if held, _ := filepath.Glob(filepath.Join(s.cfg.DataDir, BlobsDir, "sha256", "*")); len(held) > 0 {
				s.log.Warn("the data folder holds blobs kept there before --blobs existed; this server now keeps them in PostgreSQL: pass --blobs file to go on serving the folder's",
					"folder", filepath.Join(s.cfg.DataDir, BlobsDir), "blobs", len(held))
			}
		}
	}
	blobs, err := release.OpenBlobStore(ctx, spec, filepath.Join(s.cfg.DataDir, BlobsDir), filepath.Join(s.cfg.DataDir, TmpDir), s.store)
	if err != nil {
		return nil, err
	}
	s.log.Info("image and delta blobs", "store", blobs.Kind())
	return release.New(release.Config{Store: s.store, Blobs: blobs, Online: online, Expiry: s.cfg.TUFExpiry, Logger: s.log})
}

// defaultTrustDomainSuffix derives the trust domain suffix from the server's name: the first DNS
// name of its TLS certificate that is a domain of two labels or more (not localhost), else
// ca.DefaultTrustDomainSuffix.
func defaultTrustDomainSuffix(c tls.Certificate) string {
	if len(c.Certificate) > 0 {
		if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil {
			for _, n := range leaf.DNSNames {
				n = strings.ToLower(n)
				if _, err := ca.TrustDomain("tenant", n); err == nil && strings.Contains(n, ".") && !strings.HasSuffix(n, ".localhost") {
					return n
				}
			}
		}
	}
	return ca.DefaultTrustDomainSuffix
}
