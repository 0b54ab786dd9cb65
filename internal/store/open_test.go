package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// TestOpenSentences pins what `rampart server` prints when its database cannot be opened: what
// is wrong, with no function names.
func TestOpenSentences(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, mysql := store.Open(ctx, store.Config{Database: "mysql://root@localhost/rampart"})
	_, folder := store.Open(ctx, store.Config{SQLitePath: filepath.Join(file, "db", "rampart.db")})
	_, down := store.Open(ctx, store.Config{Database: "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=5"})
	for _, tc := range []struct {
		name   string
		err    error
		prefix string
	}{
		{"not postgres", mysql, "the database URL must start with postgres:// (leave it out for SQLite under the data folder)"},
		{"folder", folder, "cannot create the database's folder: mkdir " + file + ": not a directory"},
		{"down", down, "cannot connect to the database: "},
	} {
		msg, ok := public.Message(tc.err)
		if !ok || !strings.HasPrefix(msg, tc.prefix) || strings.Contains(msg, "store.") {
			t.Errorf("%s: %v; sentence %q (%v), want %q", tc.name, tc.err, msg, ok, tc.prefix)
		}
	}
}

// TestOpenRefusesNewerDatabase: a database that a newer Rampart migrated (a migration this
// version does not know) is refused with one sentence, on both databases.
func TestOpenRefusesNewerDatabase(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			cfg := store.Config{}
			if kind == "sqlite" {
				cfg.SQLitePath = filepath.Join(t.TempDir(), "rampart.db")
			} else {
				cfg.Database = storetest.PostgresURL(t)
			}
			s, err := store.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := storetest.DB(s).Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9998, 'from_the_future', 1)`); err != nil {
				t.Fatal(err)
			}
			s.Close()

			_, err = store.Open(ctx, cfg)
			msg, ok := public.Message(err)
			want := "the database was migrated by a newer Rampart (migration 9998_from_the_future is unknown to this version); run that version or a later one"
			if !ok || msg != want {
				t.Fatalf("opening a newer database: %v; sentence %q, want %q", err, msg, want)
			}
		})
	}
}
