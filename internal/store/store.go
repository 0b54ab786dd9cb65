// Package store owns Rampart's database: the connection to SQLite (embedded default) or
// PostgreSQL, the ordered migrations, and plain-SQL methods per entity. It owns every table:
// all of the service's SQL is here, and its connection pool is unexported (tests reach it
// through storetest.DB). Every mutation that matters for security appends an audit record in
// the same transaction, so a change and its record land together or not at all. Only
// server-side packages import it (the API, the verifier in internal/attest, the CA keeper, the
// release service, the web console's sessions, the server and its tasks, the backup of a data
// folder), besides the fixtures of tests and benchmarks (storetest, clitest, bench/seed); the
// agent never links it.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/store/internal/testhook"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/rampartsec/rampart/internal/public"
	msqlite "modernc.org/sqlite" // the SQLite driver (it registers "sqlite" too)
)

// Errors returned by store methods; callers test them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
	ErrInvalid  = errors.New("invalid")
)

// Config selects the database.
type Config struct {
	// Database is a postgres:// URL; empty selects SQLite at SQLitePath.
	Database string
	// SQLitePath is the SQLite database file used when Database is empty.
	SQLitePath string
	// Now returns the current time; nil means time.Now. Tests inject a clock.
	Now func() time.Time
}

// walCheckpointPages is the WAL's length, in pages, past which a commit checkpoints it (SQLite's
// wal_autocheckpoint; its default is 1,000).
const walCheckpointPages = 8000

// Store is the database handle shared by all entity methods.
type Store struct {
	db      *sql.DB
	dialect dialect
	now     func() time.Time
	stmts   sync.Map // query text -> *sql.Stmt, see QueryRow
	// The tenants found by TenantByName (name -> Tenant) and TenantNameByID (ID -> name); a
	// tenant's row never changes once created.
	tenants, tenantNames sync.Map
	offers               offerCache
	steps                stepCache  // the stepper's memory of each active deployment's group (step_cache.go)
	group                writeGroup // SQLite's group commit (group.go)
	// commits counts the write transactions committed through inTx, for /metrics.
	commits atomic.Uint64

	// On PostgreSQL: the database URL (for the deployment listener's own connection), the
	// channel on which replicas hear of deployment writes, and this replica's name on it.
	url, channel, replica string
}

// Open connects to the configured database and applies any pending migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s := &Store{now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	switch {
	case strings.HasPrefix(cfg.Database, "postgres://"), strings.HasPrefix(cfg.Database, "postgresql://"):
		s.dialect = postgres{}
		s.db, err = sql.Open("pgx", cfg.Database)
		if err != nil {
			return nil, fmt.Errorf("store.Open: %w", err)
		}
		s.db.SetMaxOpenConns(32)
		s.db.SetMaxIdleConns(32)
	case cfg.Database != "":
		return nil, fmt.Errorf("store.Open: %w", public.Errorf(public.Invalid, "the database URL must start with postgres:// (leave it out for SQLite under the data folder)"))
	default:
		if cfg.SQLitePath == "" {
			return nil, fmt.Errorf("store.Open: no database configured")
		}
		if err := os.MkdirAll(filepath.Dir(cfg.SQLitePath), 0o700); err != nil {
			return nil, fmt.Errorf("store.Open: %w", public.Errorf(public.Unavailable, "cannot create the database's folder: %w", err))
		}
		s.dialect = sqlite{}
		// A checkpoint copies the WAL's pages into the database file and syncs both; at the
		// default 1,000 pages a heal checkpointed about every hundred device writes, copying the
		// same hot pages (the audit chain's head, the newest leaves) each time. At
		// walCheckpointPages the WAL grows to about 32 MiB before its pages are copied once.
		dsn := "file:" + cfg.SQLitePath + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(" + strconv.Itoa(walCheckpointPages) + ")" +
			"&_txlock=immediate"
		// Each connection keeps its statements compiled (sqlite_stmts.go).
		s.db = sql.OpenDB(stmtConnector{dsn: dsn, drv: &msqlite.Driver{}})
		// WAL lets readers run beside the single writer; writers queue on busy_timeout.
		s.db.SetMaxOpenConns(8)
		s.db.SetMaxIdleConns(8)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store.Open: %w", public.Errorf(public.Unavailable, "cannot connect to the database: %w", err))
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	if s.dialect.name() == "postgres" {
		// The channel is the schema's: installations in two schemas of one database do not
		// hear each other.
		var schema string
		if err := s.db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			s.db.Close()
			return nil, fmt.Errorf("store.Open: %w", err)
		}
		s.url, s.channel, s.replica = cfg.Database, "rampart_deployments:"+schema, NewID("replica")
	}
	return s, nil
}

// Close releases the prepared statements and the connection pool.
func (s *Store) Close() error {
	s.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	s.closeWriter()
	return s.db.Close()
}

// Ping reports whether the database answers; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Dialect names the database in use: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect.name() }

// TestDB exposes the pool to tests that must reach under the store's methods, for example to
// tamper with an audit row; they call it through storetest.DB. Only internal/store and the
// packages under it can make the key, so production code cannot reach the pool: it uses the
// entity methods, and every table's SQL is in this package.
func (s *Store) TestDB(testhook.Key) *sql.DB { return s.db }

// Now returns the store's clock reading, truncated to the microsecond precision it stores.
func (s *Store) Now() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// quick returns ctx without its cancellation on SQLite, for the short keyed statements a device's
// requests make: such a statement finishes in microseconds whether or not the client is still
// there (a write waits at most for the group's commit), and a cancellable context costs
// database/sql and the driver a goroutine per statement and per transaction to watch it. On
// PostgreSQL, where a statement may wait on a row lock or the network, ctx is kept.
func (s *Store) quick(ctx context.Context) context.Context {
	if s.dialect.name() == "sqlite" {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// inTx runs fn in one transaction, committing only when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.commits.Add(1)
	return nil
}

// Commits returns how many write transactions the store has committed since it was opened
// (the server's /metrics; bench/run heal divides it by the devices healed).
func (s *Store) Commits() uint64 { return s.commits.Load() }

// mapErr turns driver errors into the store's sentinel errors.
func (s *Store) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if s.dialect.isUniqueViolation(err) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random identifier with a short type prefix, such as "prd_2k4...".
func NewID(prefix string) string {
	var b [15]byte
	rand.Read(b[:])
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// orderedIDEncoding is idEncoding's alphabet in byte order, so that encoded IDs sort as their
// bytes do.
var orderedIDEncoding = base32.NewEncoding("234567abcdefghijklmnopqrstuvwxyz").WithPadding(base32.NoPadding)

// newOrderedID is NewID for rows written as events happen (install reports, attestation
// results): its first 8 bytes are t in microseconds, big-endian, and the other 7 random, so that
// each new row's key lands at the end of its table's primary-key index instead of on a random page
// of it, one page fewer for the commit to write. IDs of the same microsecond stay apart by their
// random bytes.
func newOrderedID(prefix string, t time.Time) string {
	var b [15]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMicro()))
	rand.Read(b[8:])
	return prefix + "_" + orderedIDEncoding.EncodeToString(b[:])
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// querier is what both *sql.DB and *sql.Tx offer, so a read can run inside or outside a
// transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// rowScanner is what the scanX functions read one row from: a *sql.Row or *sql.Rows.
type rowScanner = interface{ Scan(...any) error }

// scanAll reads every row of rows with scan, then closes rows.
func scanAll[T any](rows *sql.Rows, scan func(rowScanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanEach calls fn for every row of rows, then closes rows.
func scanEach(rows *sql.Rows, fn func(rowScanner) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// queryIDs runs a query selecting one text column and reads all its rows.
func queryIDs(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return scanAll(rows, func(r rowScanner) (string, error) {
		var id string
		err := r.Scan(&id)
		return id, err
	})
}

// nullMicros stores an optional time: NULL for nil.
func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

// microsOrNull stores a time whose zero value means "not yet": NULL for the zero time.
func microsOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

// queryRow runs a single-row query through a cache of prepared statements. Hot read paths (a
// device's check-in) use it: SQLite parses a statement on every execution unless it is prepared
// once, which was a third of a check-in's CPU. The cache holds one *sql.Stmt per query text,
// which database/sql re-prepares per pooled connection as needed.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return s.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs a query through the same cache of prepared statements as queryRow.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return s.db.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

// TestQueryRow is queryRow for tests (storetest.QueryRow), such as a benchmark whose ceiling is
// a bare query through the same cache of prepared statements.
func (s *Store) TestQueryRow(_ testhook.Key, ctx context.Context, query string, args ...any) *sql.Row {
	return s.queryRow(ctx, query, args...)
}

func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// invalid is input the store refuses: it is ErrInvalid, and its public sentence, made here,
// says what is wrong and what to do (the API answers it as it is).
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrInvalid, public.Errorf(public.Invalid, format, args...))
}
