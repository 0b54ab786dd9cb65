package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"

	"github.com/rampartsec/rampart/internal/public"
)

// openSQLiteFile opens an SQLite database file as is: no migrations, so a backup never changes
// the schema of the server it reads from.
func openSQLiteFile(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, public.Errorf(public.Invalid, "no SQLite database at %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// SnapshotSQLite writes a consistent copy of the SQLite database at path to dest (which must not
// exist) while a server may be using it: VACUUM INTO reads one snapshot of the database (a read
// transaction, beside the server's WAL writers) and writes it as a compact database of its own.
func SnapshotSQLite(ctx context.Context, path, dest string) error {
	db, err := openSQLiteFile(path)
	if err != nil {
		return fmt.Errorf("store.SnapshotSQLite: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO $1`, dest); err != nil {
		return fmt.Errorf("store.SnapshotSQLite: %w", err)
	}
	return nil
}

// SnapshotInfo is what a backup records of a database snapshot.
type SnapshotInfo struct {
	// Schema lists the applied migrations (NNNN_name).
	Schema []string
	// Blobs lists the hex SHA-256 of every image and delta the snapshot names: the blobs a
	// restored server must have.
	Blobs []string
}

// InspectSQLite checks an SQLite database file (PRAGMA integrity_check) and lists its migrations
// and the blobs it names.
func InspectSQLite(ctx context.Context, path string) (SnapshotInfo, error) {
	db, err := openSQLiteFile(path)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("store.InspectSQLite: %w", err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil {
		return SnapshotInfo{}, fmt.Errorf("store.InspectSQLite: %w", public.Errorf(public.Invalid, "%s is not a readable SQLite database: %w", path, err))
	}
	if check != "ok" {
		return SnapshotInfo{}, fmt.Errorf("store.InspectSQLite: %w", public.Errorf(public.Invalid, "%s fails SQLite's integrity check: %s", path, check))
	}
	var info SnapshotInfo
	rows, err := db.QueryContext(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("store.InspectSQLite: %w", public.Errorf(public.Invalid, "%s is not a Rampart database: %w", path, err))
	}
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			rows.Close()
			return SnapshotInfo{}, fmt.Errorf("store.InspectSQLite: %w", err)
		}
		info.Schema = append(info.Schema, fmt.Sprintf("%04d_%s", v, name))
	}
	rows.Close()
	if info.Blobs, err = queryIDs(ctx, db, `SELECT sha256 FROM images UNION SELECT sha256 FROM release_deltas ORDER BY 1`); err != nil {
		return SnapshotInfo{}, fmt.Errorf("store.InspectSQLite: %w", err)
	}
	return info, nil
}
