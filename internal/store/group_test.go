package store_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// holdWriteLock takes SQLite's write lock in a transaction of its own and keeps it until the
// returned function is called, so that the group commit's writers queue behind it.
func holdWriteLock(t *testing.T, s *store.Store) (release func()) {
	t.Helper()
	held, done := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- storetest.InTx(context.Background(), s, func(tx *sql.Tx) error {
			// _txlock=immediate: BEGIN took the write lock already; a write makes it certain.
			if _, err := tx.Exec(`UPDATE tenants SET name = name`); err != nil {
				return err
			}
			close(held)
			<-done
			return nil
		})
	}()
	select {
	case <-held:
	case err := <-errc:
		t.Fatalf("hold the write lock: %v", err)
	}
	return func() {
		close(done)
		if err := <-errc; err != nil {
			t.Errorf("the lock holder's transaction: %v", err)
		}
	}
}

// waitQueued waits until a leader runs and n writes wait in the group commit for the next.
func waitQueued(t *testing.T, s *store.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		queued, leading := storetest.GroupState(s)
		if leading && queued == n {
			return
		}
		if time.Now().After(deadline) || queued > n {
			t.Fatalf("%d writes queued (a leader runs: %v), want %d", queued, leading, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitSharesATransaction checks that install reports that arrive while another write
// holds SQLite's lock commit together in one transaction, each one acknowledged only after it,
// and all of them stored with their audit records.
func TestGroupCommitSharesATransaction(t *testing.T) {
	s, tenantID, ids := benchDevices(t, "sqlite", 10)
	ctx := context.Background()
	release := holdWriteLock(t, s)
	before := s.Commits()
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Go(func() {
			errs[i] = s.AddInstallReport(ctx, tenantID, id, store.InstallReport{State: "committed", Release: "1.1", Reason: fmt.Sprint("r", i), At: s.Now()}, false, true)
		})
		if i == 0 {
			// The first caller leads: it took its own write and waits for the lock in BEGIN.
			waitQueued(t, s, 0)
		}
	}
	waitQueued(t, s, len(ids)-1)
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	if got := s.Commits() - before; got != 2 {
		t.Errorf("%d transactions committed, want 2 (the leader's own, then the other %d together)", got, len(ids)-1)
	}
	for i, id := range ids {
		rep, err := s.LatestInstall(ctx, tenantID, id)
		if err != nil || rep.Reason != fmt.Sprint("r", i) {
			t.Errorf("device %d: latest report %+v, %v; want reason r%d", i, rep, err, i)
		}
	}
	var audited int
	if err := storetest.DB(s).QueryRow(`SELECT COUNT(*) FROM audit_records WHERE tenant_id = $1 AND action = 'device.install.committed'`, tenantID).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if audited != len(ids) {
		t.Errorf("%d audit records of committed installs, want %d", audited, len(ids))
	}
	if _, err := s.VerifyAudit(ctx, tenantID); err != nil {
		t.Errorf("the audit chain: %v", err)
	}
}

// TestGroupCommitIsolatesFailures checks that a write of a group whose function fails or
// panics is rolled back alone, its caller alone sees the error (or the panic), and the others
// commit.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s, _, ids := benchDevices(t, "sqlite", 7)
	ctx := context.Background()
	release := holdWriteLock(t, s)
	errBad := errors.New("refused by the caller")
	set := func(id, rel string) func(tx *sql.Tx) error {
		return func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE devices SET current_release = $1 WHERE id = $2`, rel, id)
			return err
		}
	}
	type outcome struct {
		err      error
		panicked any
	}
	out := make([]outcome, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		fn := set(id, "2.0")
		switch i {
		case 2: // writes, then fails
			fn = func(tx *sql.Tx) error {
				if err := set(id, "2.0")(tx); err != nil {
					return err
				}
				return errBad
			}
		case 4: // writes, then panics
			fn = func(tx *sql.Tx) error {
				if err := set(id, "2.0")(tx); err != nil {
					return err
				}
				panic("a bug in one write")
			}
		case 5: // a statement that fails
			fn = func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO devices (id) VALUES ($1)`, id)
				return err
			}
		}
		wg.Go(func() {
			defer func() { out[i].panicked = recover() }()
			out[i].err = storetest.GroupTx(ctx, s, fn)
		})
		if i == 0 {
			waitQueued(t, s, 0)
		}
	}
	waitQueued(t, s, len(ids)-1)
	release()
	wg.Wait()
	for i, id := range ids {
		var rel string
		if err := storetest.DB(s).QueryRow(`SELECT current_release FROM devices WHERE id = $1`, id).Scan(&rel); err != nil {
			t.Fatal(err)
		}
		want, o := "2.0", out[i]
		switch i {
		case 2:
			want = "1.0"
			if !errors.Is(o.err, errBad) {
				t.Errorf("write %d: error %v, want %v", i, o.err, errBad)
			}
		case 4:
			want = "1.0"
			if o.panicked != "a bug in one write" {
				t.Errorf("write %d: panic %v, want its own", i, o.panicked)
			}
		case 5:
			want = "1.0"
			if o.err == nil {
				t.Errorf("write %d: no error from a failing statement", i)
			}
		default:
			if o.err != nil || o.panicked != nil {
				t.Errorf("write %d: %v, panic %v", i, o.err, o.panicked)
			}
		}
		if rel != want {
			t.Errorf("device %d: current release %q, want %q", i, rel, want)
		}
	}
}

// TestGroupCommitSurvivesKill kills a process writing install reports through the group
// commit with SIGKILL, and checks that every report it acknowledged is in the database when it
// is opened again.
func TestGroupCommitSurvivesKill(t *testing.T) {
	if path := os.Getenv("RAMPART_GROUP_KILL_DB"); path != "" {
		groupKillChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("starts a writer process and kills it")
	}
	path := filepath.Join(t.TempDir(), "rampart.db")
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{SQLitePath: path})
	if err != nil {
		t.Fatal(err)
	}
	seedDevices(t, s, 64)
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run", "^TestGroupCommitSurvivesKill$", "-test.v")
	cmd.Env = append(os.Environ(), "RAMPART_GROUP_KILL_DB="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct{ device, reason string }
	var acks []ack
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(acks) < 600 {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ack" {
			acks = append(acks, ack{f[1], f[2]})
		}
	}
	// Kill while the writers are busy: some of their writes are queued, one group in flight.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(acks) < 600 {
		t.Fatalf("the writer acknowledged %d reports before it stopped, want 600", len(acks))
	}
	s, err = store.Open(ctx, store.Config{SQLitePath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stored int
	if err := storetest.DB(s).QueryRow(`SELECT COUNT(*) FROM install_reports`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	for _, a := range acks {
		var n int
		if err := storetest.DB(s).QueryRow(`SELECT COUNT(*) FROM install_reports WHERE device_id = $1 AND reason = $2`, a.device, a.reason).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("acknowledged report %s of device %s: %d stored after kill -9, want 1", a.reason, a.device, n)
		}
	}
	t.Logf("%d reports acknowledged before SIGKILL, %d stored after it", len(acks), stored)
}

// groupKillChild is the writer TestGroupCommitSurvivesKill kills: 16 goroutines report
// installs until the process dies, printing each report once it is acknowledged.
func groupKillChild(t *testing.T, path string) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{SQLitePath: path})
	if err != nil {
		t.Fatal(err)
	}
	var tenantID string
	var ids []string
	rows, err := storetest.DB(s).Query(`SELECT tenant_id, id FROM devices ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&tenantID, &id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id, reason := ids[(g*7+i)%len(ids)], fmt.Sprintf("w%d-%d", g, i)
				err := s.AddInstallReport(ctx, tenantID, id, store.InstallReport{State: "installing", Release: "1.1", Reason: reason, At: s.Now()}, false, false)
				if err != nil {
					panic(err)
				}
				mu.Lock()
				fmt.Fprintf(w, "ack %s %s\n", id, reason)
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// seedDevices adds a tenant with a product and n claimed devices to s.
func seedDevices(t *testing.T, s *store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	tn, err := s.CreateTenant(ctx, "token:test", "", "acme")
	if err != nil {
		t.Fatal(err)
	}
	p, groups, err := s.CreateProduct(ctx, "token:test", tn.ID, "thermostat", "")
	if err != nil {
		t.Fatal(err)
	}
	err = storetest.InTx(ctx, s, func(tx *sql.Tx) error {
		for i := range n {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", tn.ID, i)))
			now := s.Now().UnixMicro()
			if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation,
				current_release, target_release, created_at, updated_at) VALUES ($1, $2, $3, $4, 'claimed', '', '1.0', '', $5, $5)`,
				hex.EncodeToString(sum[:]), tn.ID, p.ID, groups[2].ID, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteCheckpointsLongerWAL checks that every SQLite connection of the store checkpoints its
// WAL at 8,000 pages, not SQLite's default of 1,000 (store.Open).
func TestSQLiteCheckpointsLongerWAL(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	ctx := context.Background()
	db := storetest.DB(s)
	// Hold several connections at once, so that more than one of the pool's is asked.
	var conns []*sql.Conn
	for range 3 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var pages int
		if err := c.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if pages != 8000 {
			t.Errorf("connection %d checkpoints at %d pages, want 8000", i, pages)
		}
		c.Close()
	}
}
