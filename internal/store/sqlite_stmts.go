package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
	"strings"

	msqlite "modernc.org/sqlite"
)

// SQLite compiles every statement it runs. The driver prepares and finalizes a statement for
// each Exec and Query made outside a *sql.Stmt, which is every statement inside a transaction:
// parsing them was a tenth of the server's CPU in a heal (doc/benchmarks.md). stmtConn keeps
// each connection's statements compiled, by their text, and runs them again with new
// arguments; the driver resets a statement after each use, so a kept statement holds no lock
// and no transaction between uses. Scripts (text with a ';', the migrations) are not kept.

// maxKeptStmts bounds the statements one connection keeps; past it, new texts are compiled
// for each use as before. The store's statements are a few hundred texts at most.
const maxKeptStmts = 512

// stmtConnector opens SQLite connections that keep their statements.
type stmtConnector struct {
	dsn string
	drv *msqlite.Driver
}

func (c stmtConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return newStmtConn(conn)
}

func (c stmtConnector) Driver() driver.Driver { return c.drv }

// innerConn is what stmtConn needs of the driver's connection.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type keptStmt struct {
	st interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	}
	busy bool // rows of it are open
}

// stmtConn is one connection with its kept statements. database/sql uses a connection from
// one goroutine at a time, so it needs no lock.
type stmtConn struct {
	innerConn
	kept map[string]*keptStmt
}

func newStmtConn(c driver.Conn) (driver.Conn, error) {
	ic, ok := c.(innerConn)
	if !ok {
		c.Close()
		return nil, errors.New("store: the SQLite driver's connection lacks the context methods")
	}
	return &stmtConn{innerConn: ic, kept: map[string]*keptStmt{}}, nil
}

// stmt returns the kept statement of query, compiling it on first use; nil when query is not
// kept (a script, the bound reached, a statement that does not compile: the caller runs it
// the driver's way, which reports the error).
func (c *stmtConn) stmt(ctx context.Context, query string) *keptStmt {
	if k, ok := c.kept[query]; ok {
		return k
	}
	if strings.IndexByte(query, ';') >= 0 || len(c.kept) >= maxKeptStmts {
		return nil
	}
	st, err := c.innerConn.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	full, ok := st.(interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	})
	if !ok {
		st.Close()
		return nil
	}
	k := &keptStmt{st: full}
	c.kept[query] = k
	return k
}

func (c *stmtConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	k := c.stmt(ctx, query)
	if k == nil || k.busy {
		return c.innerConn.ExecContext(ctx, query, args)
	}
	return k.st.ExecContext(ctx, args)
}

func (c *stmtConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	k := c.stmt(ctx, query)
	if k == nil || k.busy {
		return c.innerConn.QueryContext(ctx, query, args)
	}
	r, err := k.st.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	k.busy = true
	return &keptRows{Rows: r, k: k}, nil
}

// Close finalizes the kept statements, then closes the connection.
func (c *stmtConn) Close() error {
	var errs []error
	for q, k := range c.kept {
		errs = append(errs, k.st.Close())
		delete(c.kept, q)
	}
	errs = append(errs, c.innerConn.Close())
	return errors.Join(errs...)
}

// keptRows frees its statement for the next use when closed (the driver resets it then).
type keptRows struct {
	driver.Rows
	k *keptStmt
}

func (r *keptRows) Close() error {
	err := r.Rows.Close()
	r.k.busy = false
	return err
}

// The column-type methods database/sql looks for on rows, passed on to the driver's.

func (r *keptRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *keptRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *keptRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *keptRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *keptRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
