package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PutOIDCLogin keeps a pending OpenID Connect sign-in (its PKCE verifier and nonce) under the
// hash of its state until expires, and drops pending sign-ins that expired, so the table holds
// only the sign-ins of the last few minutes.
func (s *Store) PutOIDCLogin(ctx context.Context, stateHash, verifier, nonce string, expires time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oidc_logins WHERE expires_at <= $1`, micros(s.Now())); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oidc_logins (state_hash, verifier, nonce, expires_at) VALUES ($1, $2, $3, $4)`,
			stateHash, verifier, nonce, micros(expires))
		return err
	})
	if err != nil {
		return fmt.Errorf("store.PutOIDCLogin: %w", s.mapErr(err))
	}
	return nil
}

// TakeOIDCLogin returns the pending sign-in kept under stateHash and deletes it, so a state is
// used once. found is false when there is none, or when it expired before now.
func (s *Store) TakeOIDCLogin(ctx context.Context, stateHash string, now time.Time) (verifier, nonce string, found bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var expires int64
		err := tx.QueryRowContext(ctx, `DELETE FROM oidc_logins WHERE state_hash = $1 RETURNING verifier, nonce, expires_at`, stateHash).
			Scan(&verifier, &nonce, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = now.Before(fromMicros(expires))
		return nil
	})
	if err != nil {
		return "", "", false, fmt.Errorf("store.TakeOIDCLogin: %w", s.mapErr(err))
	}
	if !found {
		return "", "", false, nil
	}
	return verifier, nonce, true, nil
}
