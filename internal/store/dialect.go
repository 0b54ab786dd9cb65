package store

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is the seam between SQLite and PostgreSQL. Queries are written once, with $N
// placeholders that both drivers accept; only what truly differs lives here.
type dialect interface {
	name() string
	// rewrite adapts a migration's text: the type BYTES becomes BLOB or BYTEA.
	rewrite(ddl string) string
	isUniqueViolation(err error) bool
	// migrationLock serialises migrations between replicas that start together; "" when the
	// database serialises writers itself.
	migrationLock() string
}

type sqlite struct{}

func (sqlite) name() string { return "sqlite" }

func (sqlite) rewrite(ddl string) string { return strings.ReplaceAll(ddl, "BYTES", "BLOB") }

func (sqlite) isUniqueViolation(err error) bool {
	var e *msqlite.Error
	if errors.As(err, &e) {
		c := e.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func (sqlite) migrationLock() string { return "" }

type postgres struct{}

func (postgres) name() string { return "postgres" }

func (postgres) rewrite(ddl string) string { return strings.ReplaceAll(ddl, "BYTES", "BYTEA") }

func (postgres) isUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

// A transaction-scoped advisory lock: released by the commit of the migration transaction.
func (postgres) migrationLock() string { return "SELECT pg_advisory_xact_lock(72656)" }
