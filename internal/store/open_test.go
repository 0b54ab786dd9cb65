package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/store"
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
