package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/public"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the embedded migrations in order. Files are named NNNN_name.sql; numbers are
// reserved per area (0001-0099 foundation, 0100 attestation, 0200 updates, 0300 rollouts,
// 0400 vulnerability response) so that areas never collide.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("two migrations share number %04d", out[i].version)
		}
	}
	return out, nil
}

// migrate applies every pending migration, each in its own transaction together with its row in
// schema_migrations, so a failed migration leaves the schema at the previous version.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("store.migrate: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store.migrate: %w", err)
	}
	if err := s.refuseNewer(ctx, ms); err != nil {
		return err
	}
	for _, m := range ms {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if lock := s.dialect.migrationLock(); lock != "" {
				if _, err := tx.ExecContext(ctx, lock); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range splitStatements(s.dialect.rewrite(m.sql)) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%q: %w", firstLine(stmt), err)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, micros(s.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("store.migrate: migration %04d_%s: %w", m.version, m.name, err)
		}
	}
	return nil
}

// refuseNewer fails when the database holds a migration this version does not know: a newer
// Rampart migrated it, and this one would misread its tables. Migrations are numbered per area,
// so an unknown number below the highest known one is refused too.
func (s *Store) refuseNewer(ctx context.Context, known []migration) error {
	rows, err := s.db.QueryContext(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		return fmt.Errorf("store.migrate: %w", err)
	}
	defer rows.Close()
	have := map[int]bool{}
	for _, m := range known {
		have[m.version] = true
	}
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return fmt.Errorf("store.migrate: %w", err)
		}
		if !have[v] {
			return fmt.Errorf("store.migrate: %w", public.Errorf(public.Unavailable,
				"the database was migrated by a newer Rampart (migration %04d_%s is unknown to this version); run that version or a later one", v, name))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store.migrate: %w", err)
	}
	return nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store.SchemaVersion: %w", err)
	}
	return int(v.Int64), nil
}

// splitStatements splits a migration on semicolons at line ends. Migrations keep to plain DDL,
// so no statement carries a semicolon inside a literal.
func splitStatements(text string) []string {
	var out []string
	for _, part := range strings.Split(text, ";\n") {
		var lines []string
		for _, l := range strings.Split(part, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, l)
			}
		}
		if stmt := strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";"); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
