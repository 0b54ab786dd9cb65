// Package storetest opens real, empty stores for tests: SQLite in a temporary folder always,
// and PostgreSQL in a schema of its own when RAMPART_TEST_POSTGRES names a server. It is also
// the only way to a store's connection pool (DB, InTx), for tests that seed or inspect rows
// under the store's methods. Only tests import it.
package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/internal/testhook"
	"github.com/rampartsec/rampart/internal/testenv"
)

// Kinds are the databases every storage test runs on.
var Kinds = []string{"sqlite", "postgres"}

// Each runs fn as a subtest once per database kind.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) { fn(t, Open(t, kind)) })
	}
}

// Open returns an empty, migrated store of the given kind, removed when the test ends.
func Open(t testing.TB, kind string) *store.Store {
	t.Helper()
	return OpenWithClock(t, kind, nil)
}

// OpenWithClock is Open with an injected clock.
func OpenWithClock(t testing.TB, kind string, now func() time.Time) *store.Store {
	t.Helper()
	ctx := context.Background()
	cfg := store.Config{Now: now}
	switch kind {
	case "sqlite":
		cfg.SQLitePath = filepath.Join(t.TempDir(), "rampart.db")
	case "postgres":
		cfg.Database = PostgresURL(t)
	default:
		t.Fatalf("storetest: unknown kind %q", kind)
	}
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", kind, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresURL creates a schema of its own on the server named by RAMPART_TEST_POSTGRES and
// returns a URL whose connections use it, so that parallel packages never collide. The schema is
// dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("RAMPART_TEST_POSTGRES")
	if base == "" {
		testenv.Missing(t, "PostgreSQL", "set RAMPART_TEST_POSTGRES, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	defer admin.Close()
	schema := strings.ToLower(fmt.Sprintf("t_%s", store.NewID("s")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("storetest: PostgreSQL at RAMPART_TEST_POSTGRES does not answer: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("storetest: RAMPART_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// DB returns s's connection pool, for a test that seeds, tampers with or counts rows under the
// store's methods.
func DB(s *store.Store) *sql.DB { return s.TestDB(testhook.Key{}) }

// InTx runs fn in one transaction on s's pool, committing only when fn returns nil.
func InTx(ctx context.Context, s *store.Store, fn func(tx *sql.Tx) error) error {
	tx, err := DB(s).BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// QueryRow runs a single-row query through s's cache of prepared statements, the path of the
// store's hot reads; a benchmark uses it as its ceiling.
func QueryRow(ctx context.Context, s *store.Store, query string, args ...any) *sql.Row {
	return s.TestQueryRow(testhook.Key{}, ctx, query, args...)
}

// GroupTx runs fn through s's group commit (SQLite's writes of devices, which may share one
// transaction), as the store's install reports, attestation records and director updates do.
func GroupTx(ctx context.Context, s *store.Store, fn func(tx *sql.Tx) error) error {
	return s.TestGroupTx(testhook.Key{}, ctx, fn)
}

// GroupState is how many writes wait in s's group commit for a leader, and whether a leader
// runs (a group's transaction is open or being opened).
func GroupState(s *store.Store) (queued int, leading bool) { return s.TestGroupState(testhook.Key{}) }
