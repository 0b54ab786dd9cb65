// Package server holds `rampart server`, which runs the service.
package server

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/server"
)

// Command returns `rampart server`.
func Command(env *clienv.Env) *cobra.Command {
	var cfg server.Config
	var logFormat, logLevel, cpuProfile string
	cmd := &cobra.Command{
		Use:   "server --data DIR --listen HOST:PORT [--database postgres://...] [--tls-cert F --tls-key F]",
		Short: "Run the Rampart service",
		Long: "Run the Rampart service over HTTPS.\n\n" +
			"By default everything lives under --data: the SQLite database (WAL), the service CA\n" +
			"(service-ca.pem) that signs the server's own certificate unless --tls-cert is given, and on\n" +
			"first start an administrator token in admin.token (mode 0600). With --database\n" +
			"postgres://... the data lives in PostgreSQL instead, and any number of servers may share it:\n" +
			"images and deltas too (--blobs postgres, or a bucket with --blobs s3://...), so replicas on\n" +
			"several machines need no shared folder, only the same --master-key-file, --online-keys-file\n" +
			"and TLS certificate.\n\n" +
			"Endpoints: /api/v1 (admin API, OpenAPI at /api/v1/openapi.json), /healthz, /readyz, /metrics.\n" +
			"SIGINT or SIGTERM drains in-flight requests and stops.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(env, logFormat, logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = log
			cfg.Ready = func(addr net.Addr) {
				fmt.Fprintf(env.Stderr, "rampart server listening on https://%s\n", addr)
			}
			s, err := server.New(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if s.FirstStart {
				ca, tok := filepath.Join(cfg.DataDir, server.ServiceCAFile), filepath.Join(cfg.DataDir, server.AdminTokenFile)
				fmt.Fprintf(env.Stderr, "first start: service CA in %s, administrator token in %s\n", ca, tok)
				host := cfg.Listen
				if h, p, err := net.SplitHostPort(cfg.Listen); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
					host = net.JoinHostPort("127.0.0.1", p)
				}
				fmt.Fprintf(env.Stderr, "log in with: rampart login --server https://%s --ca-file %s --token-file %s\n", host, ca, tok)
			}
			stopProfile, err := clienv.StartCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stopProfile()
			return s.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", "rampart-data", "data folder: SQLite database, blobs, service CA, first admin token")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8443", "address to listen on, HOST:PORT")
	f.StringVar(&cfg.Database, "database", "", "PostgreSQL URL (postgres://...); default: SQLite under --data")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "server certificate (PEM); default: one signed by the service CA")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "key of --tls-cert (PEM)")
	f.StringVar(&cfg.MasterKeyFile, "master-key-file", "", "key-encryption key sealing tenant CA keys (64 hex digits); default: DIR/master.key, created on first start; replicas sharing a database need the same one")
	f.StringVar(&cfg.OnlineKeysFile, "online-keys-file", "", "the online TUF keys (snapshot, timestamp, director); default: DIR/tuf-online-keys.json, created on first start; replicas sharing a database need the same one")
	f.StringVar(&cfg.Blobs, "blobs", "", "where images and deltas live: file (DIR/blobs, one machine), postgres (in the database) or a bucket URL such as s3://BUCKET?region=R&endpoint=URL; default: file with SQLite, postgres with --database")
	f.StringVar(&cfg.TrustDomainSuffix, "trust-domain-suffix", "", "each tenant's SPIFFE trust domain is TENANT.SUFFIX, fixed when its CA is made; default: the server's DNS name from its TLS certificate, else "+ca.DefaultTrustDomainSuffix)
	f.Float64Var(&cfg.DeviceRate, "device-rate", server.DefaultDeviceRate, "device API requests per second allowed per device (bursts of 20 s worth); 0 for no limit")
	f.Float64Var(&cfg.AddrRate, "address-rate", server.DefaultAddrRate, "device API requests per second allowed per client address (bursts of 10 s worth); 0 for no limit")
	f.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the server until it stops to FILE (go tool pprof), for benchmarks")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func newLogger(env *clienv.Env, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("--log-level %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q is not text or json", format)
}
