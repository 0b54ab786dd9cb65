// Package server holds `rampart server`, which runs the service.
package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/sso"
)

// Command returns `rampart server`.
func Command(env *clienv.Env) *cobra.Command {
	var cfg server.Config
	var logFormat, logLevel, cpuProfile, heapProfile string
	var oidc sso.Config
	var oidcSecretFile string
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
			"Endpoints: /api/v1 (admin API, OpenAPI at /api/v1/openapi.json), /research/v1 (researcher API),\n" +
			"/healthz, /readyz, /metrics; the web console at / and the researcher portal at /research/.\n\n" +
			"Operators sign in to the console with an API token, or with OpenID Connect when --oidc-issuer\n" +
			"is set: register Rampart at the identity provider as a web client (authorization code flow;\n" +
			"Rampart always uses PKCE) with the redirect URL https://HOST/login/oidc/callback, and have\n" +
			"it put two claims in the ID token: the user's tenant (its name; --oidc-tenant-claim, default\n" +
			"rampart_tenant) and role (admin, operator or reader, or a list of which the most able counts;\n" +
			"--oidc-role-claim, default rampart_role). A user without both, or naming a tenant this server\n" +
			"does not have, is refused and gets no session.\n\n" +
			"SIGINT or SIGTERM drains in-flight requests and stops.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(env, logFormat, logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = log
			if err := oidcConfig(cmd, &cfg, oidc, oidcSecretFile); err != nil {
				return err
			}
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
			heapWritten, err := clienv.HeapProfileAtStop(cmd.Context(), heapProfile, env.Stderr)
			if err != nil {
				return err
			}
			defer heapWritten()
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
	f.StringVar(&oidc.Issuer, "oidc-issuer", "", "OpenID Connect issuer URL operators sign in with (its /.well-known/openid-configuration is read at start); empty: API tokens only")
	f.StringVar(&oidc.ClientID, "oidc-client-id", "", "this server's client ID at the identity provider")
	f.StringVar(&oidcSecretFile, "oidc-client-secret-file", "", "file holding the client's secret; none for a public client")
	f.StringVar(&oidc.RedirectURL, "oidc-redirect-url", "", "https://HOST/login/oidc/callback as browsers reach this server, registered at the provider")
	f.StringVar(&oidc.TenantClaim, "oidc-tenant-claim", sso.DefaultTenantClaim, "ID token claim holding the user's tenant name")
	f.StringVar(&oidc.RoleClaim, "oidc-role-claim", sso.DefaultRoleClaim, "ID token claim holding the user's role (admin, operator or reader), or a list of which the most able counts")
	f.StringSliceVar(&oidc.Scopes, "oidc-scopes", []string{"email", "profile"}, "scopes asked for besides openid")
	f.BoolVar(&cfg.Restored, "restored", false, "the database was just restored from a backup (pg_restore): before serving, sign the TUF metadata at versions above anything signed since the backup, so devices that fetched newer metadata accept it; `rampart restore` marks its folder so that this is done without the flag")
	f.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the server until it stops to FILE (go tool pprof), for benchmarks")
	f.StringVar(&heapProfile, "heap-profile", "", "when told to stop, before draining, write a heap profile of the server to FILE and its memory figures to stderr, for benchmarks")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// oidcConfig sets cfg.OIDC from the --oidc-* flags, or refuses them without --oidc-issuer.
func oidcConfig(cmd *cobra.Command, cfg *server.Config, oidc sso.Config, secretFile string) error {
	if oidc.Issuer == "" {
		for _, f := range []string{"oidc-client-id", "oidc-client-secret-file", "oidc-redirect-url", "oidc-tenant-claim", "oidc-role-claim", "oidc-scopes"} {
			if cmd.Flags().Changed(f) {
				return fmt.Errorf("--%s needs --oidc-issuer", f)
			}
		}
		return nil
	}
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return fmt.Errorf("--oidc-client-secret-file: %w", err)
		}
		oidc.ClientSecret = strings.TrimSpace(string(b))
		if oidc.ClientSecret == "" {
			return fmt.Errorf("--oidc-client-secret-file %s is empty", secretFile)
		}
	}
	cfg.OIDC = &oidc
	return nil
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
