package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// StoredBlob is a blob kept in the database (migration 0600_blobs.sql): its chunks are those of
// upload UploadID, each ChunkSize bytes but the last.
type StoredBlob struct {
	SHA256    string
	UploadID  string
	Length    int64
	ChunkSize int64
}

// BeginBlobUpload starts an upload whose chunks follow with PutBlobChunk.
func (s *Store) BeginBlobUpload(ctx context.Context) (string, error) {
	id := NewID("upl")
	if _, err := s.db.ExecContext(ctx, `INSERT INTO blob_uploads (id, started_at) VALUES ($1, $2)`, id, micros(s.Now())); err != nil {
		return "", fmt.Errorf("store.BeginBlobUpload: %w", err)
	}
	return id, nil
}

// PutBlobChunk stores chunk seq of an upload. Each chunk commits on its own, so an upload never
// holds one long transaction open.
func (s *Store) PutBlobChunk(ctx context.Context, uploadID string, seq int64, data []byte) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO blob_chunks (upload_id, seq, data) VALUES ($1, $2, $3)`, uploadID, seq, data); err != nil {
		return fmt.Errorf("store.PutBlobChunk: %w", err)
	}
	return nil
}

// FinishBlobUpload names a complete upload by its SHA-256. When a blob with that hash is already
// stored (the same bytes uploaded twice, perhaps through two replicas at once) the upload is
// dropped and the stored one stays.
func (s *Store) FinishBlobUpload(ctx context.Context, b StoredBlob) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO blobs (sha256, upload_id, length, chunk_size, created_at) VALUES ($1, $2, $3, $4, $5)`,
		b.SHA256, b.UploadID, b.Length, b.ChunkSize, micros(s.Now()))
	if err != nil && s.dialect.isUniqueViolation(err) {
		_, err = s.db.ExecContext(ctx, `DELETE FROM blob_uploads WHERE id = $1`, b.UploadID)
	}
	if err != nil {
		return fmt.Errorf("store.FinishBlobUpload: %w", err)
	}
	return nil
}

// AbortBlobUpload drops an unfinished upload and its chunks.
func (s *Store) AbortBlobUpload(ctx context.Context, uploadID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM blob_uploads WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM blobs WHERE upload_id = $1)`, uploadID); err != nil {
		return fmt.Errorf("store.AbortBlobUpload: %w", err)
	}
	return nil
}

// SweepBlobUploads drops the uploads started before cutoff that no blob names: those a replica
// stopped in the middle of. It returns how many it dropped.
func (s *Store) SweepBlobUploads(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM blob_uploads WHERE started_at < $1
		AND NOT EXISTS (SELECT 1 FROM blobs WHERE blobs.upload_id = blob_uploads.id)`, micros(cutoff))
	if err != nil {
		return 0, fmt.Errorf("store.SweepBlobUploads: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store.SweepBlobUploads: %w", err)
	}
	return n, nil
}

// Blob returns a stored blob by its hex SHA-256; ErrNotFound when there is none.
func (s *Store) Blob(ctx context.Context, sha256 string) (StoredBlob, error) {
	b := StoredBlob{SHA256: sha256}
	err := s.db.QueryRowContext(ctx, `SELECT upload_id, length, chunk_size FROM blobs WHERE sha256 = $1`, sha256).Scan(&b.UploadID, &b.Length, &b.ChunkSize)
	if errors.Is(err, sql.ErrNoRows) {
		return StoredBlob{}, fmt.Errorf("store.Blob: %w", ErrNotFound)
	}
	if err != nil {
		return StoredBlob{}, fmt.Errorf("store.Blob: %w", err)
	}
	return b, nil
}

// BlobChunk returns chunk seq of an upload, appended to buf[:0].
func (s *Store) BlobChunk(ctx context.Context, uploadID string, seq int64, buf []byte) ([]byte, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, `SELECT data FROM blob_chunks WHERE upload_id = $1 AND seq = $2`, uploadID, seq).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store.BlobChunk: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store.BlobChunk: %w", err)
	}
	return append(buf[:0], data...), nil
}
