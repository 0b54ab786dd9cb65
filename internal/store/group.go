package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"

	"github.com/rampartsec/rampart/internal/store/internal/testhook"
)

// Group commit (SQLite). SQLite runs one write transaction at a time, and a commit's cost is
// mostly the pages it writes to the WAL (each dirty page a frame, each frame its own writes):
// an audited install report dirtied about ten pages, most of them the same for every device
// (the audit chain's head, the last leaf of the audit records, of the install reports). The
// short writes a healed device makes (its install reports, its attestation record, the
// director naming its release) therefore queue here and commit together: one writer, the
// leader, runs the queued writes in one transaction, each inside a savepoint, and commits once.
//
// What is durable when does not change: a caller returns only after the transaction holding
// its write committed (or with an error, its write rolled back), so an acknowledged write
// survives kill -9 as before (TestGroupCommitSurvivesKill). A write whose function fails is
// rolled back to its savepoint and the others commit; a failure of the transaction itself (its
// BEGIN, a savepoint, the COMMIT) fails every write of the group, none of which committed.
// Each write still carries its audit record in the same transaction. On PostgreSQL, where
// writers run side by side, groupTx is inTx.

// maxGroup bounds the writes one transaction takes, so that a leader's own caller is not held
// for long.
const maxGroup = 64

// writeGroup is the queue of writes waiting for the leader.
type writeGroup struct {
	mu      sync.Mutex
	queue   []*groupWrite
	leading bool // a leader is running; the next one is named from the queue
	// conn is the connection every group's transaction runs on, taken from the pool at the
	// first group and kept; only the leader touches it. SQLite drops a connection's page cache
	// when another connection committed since its last transaction, so a write on whichever
	// connection the pool gave read its pages (the audit chain's head, the tables' newest
	// leaves, the indexes' inner pages) back from the file; on the connection that made the
	// last commit they are still in its cache. connMu is held by the leader for its whole
	// transaction and by Close, which so waits for the group in flight before closing conn.
	connMu sync.Mutex
	conn   *sql.Conn
}

// groupWrite is one caller's write. wake receives true when the caller is to lead the next
// group (its write is then the queue's first), and false when its write is done.
type groupWrite struct {
	ctx      context.Context
	fn       func(*sql.Tx) error
	err      error
	panicked any
	wake     chan bool
}

// groupTx runs fn in a transaction it may share with other callers' writes (see above); fn
// must be short and must not itself write through the store outside tx.
func (s *Store) groupTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.dialect.name() != "sqlite" {
		return s.inTx(ctx, fn)
	}
	w := &groupWrite{ctx: ctx, fn: fn, wake: make(chan bool, 1)}
	g := &s.group
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead {
		s.leadGroup()
	}
	for <-w.wake {
		s.leadGroup()
	}
	if w.panicked != nil {
		panic(w.panicked)
	}
	return w.err
}

// leadGroup commits the writes at the head of the queue (the leader's own first), tells each
// its outcome and names the next leader.
func (s *Store) leadGroup() {
	g := &s.group
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	batch := g.queue[:n:n]
	g.queue = append([]*groupWrite(nil), g.queue[n:]...)
	g.mu.Unlock()

	s.commitGroup(batch)

	g.mu.Lock()
	var next *groupWrite
	if len(g.queue) > 0 {
		next = g.queue[0]
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	for _, w := range batch {
		w.wake <- false
	}
	if next != nil {
		next.wake <- true
	}
}

// commitGroup runs batch in one transaction and records each write's outcome.
func (s *Store) commitGroup(batch []*groupWrite) {
	s.group.connMu.Lock()
	defer s.group.connMu.Unlock()
	// The transaction outlives any one caller's cancellation (and watching it would cost a
	// goroutine per transaction); each statement runs under its caller's context.
	ctx := context.Background()
	if len(batch) == 1 {
		w := batch[0]
		if err := w.ctx.Err(); err != nil {
			w.err = err
			return
		}
		tx, err := s.beginWriter(ctx)
		if err != nil {
			w.err = err
			return
		}
		if err := w.run(tx); err != nil || w.panicked != nil {
			tx.Rollback()
			w.err = err
			return
		}
		if err := tx.Commit(); err != nil {
			w.err = err
			return
		}
		s.commits.Add(1)
		return
	}
	tx, err := s.beginWriter(ctx)
	if err != nil {
		failAll(batch, err)
		return
	}
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.err = err
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT grp`); err != nil {
			tx.Rollback()
			failAll(batch, fmt.Errorf("store: group commit: %w", err))
			return
		}
		if err := w.run(tx); err != nil || w.panicked != nil {
			w.err = err
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO grp`); err != nil {
				tx.Rollback()
				failAll(batch, fmt.Errorf("store: group commit: %w", err))
				return
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE grp`); err != nil {
			tx.Rollback()
			failAll(batch, fmt.Errorf("store: group commit: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		failAll(batch, err)
		return
	}
	s.commits.Add(1)
}

// beginWriter begins a transaction on the group's connection (writeGroup.conn), taking one
// from the pool when there is none yet or the last one broke. Only the leader calls it, holding
// connMu.
func (s *Store) beginWriter(ctx context.Context) (*sql.Tx, error) {
	g := &s.group
	if g.conn == nil {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		g.conn = c
	}
	tx, err := g.conn.BeginTx(ctx, nil)
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
		g.conn.Close()
		g.conn = nil
	}
	return tx, err
}

// closeWriter gives the group's connection back to the pool, after the group in flight if any;
// Close calls it. Writes queued later fail as the pool is closed.
func (s *Store) closeWriter() {
	s.group.connMu.Lock()
	defer s.group.connMu.Unlock()
	if s.group.conn != nil {
		s.group.conn.Close()
		s.group.conn = nil
	}
}

// run calls the write's function, keeping a panic for its caller's goroutine.
func (w *groupWrite) run(tx *sql.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			w.panicked = p
			err = fmt.Errorf("store: a write panicked: %v", p)
		}
	}()
	return w.fn(tx)
}

// failAll gives err to every write of a group whose transaction did not commit, keeping the
// writes' own errors.
func failAll(batch []*groupWrite, err error) {
	for _, w := range batch {
		if w.err == nil && w.panicked == nil {
			w.err = err
		}
	}
}

// TestGroupTx is groupTx for tests (storetest.GroupTx).
func (s *Store) TestGroupTx(_ testhook.Key, ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.groupTx(ctx, fn)
}

// TestGroupState is how many writes wait for a leader and whether a leader runs, for tests
// (storetest.GroupState).
func (s *Store) TestGroupState(testhook.Key) (queued int, leading bool) {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.queue), s.group.leading
}
