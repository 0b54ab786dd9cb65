package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
)

// TestCloseDuringGroupWrites: closing the store while writers keep the group commit busy waits
// for the group in flight and fails the later writes with an error; nothing panics or races
// (go test -race) on the group's kept connection.
func TestCloseDuringGroupWrites(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{SQLitePath: filepath.Join(t.TempDir(), "rampart.db")})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				err := s.groupTx(ctx, func(tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, `DELETE FROM attest_challenges WHERE expires_at < 0`)
					return err
				})
				if i == 10 || (err != nil && i < 10) {
					started <- struct{}{}
				}
				if err != nil {
					if i < 10 {
						t.Errorf("a write before Close: %v", err)
					}
					return
				}
			}
		}()
	}
	for range 8 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
}
