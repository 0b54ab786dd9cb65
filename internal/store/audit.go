package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/public"
)

// Actor names who made a change, as recorded in the audit chain: "token:<id>", "device:<id>",
// "researcher:<id>" or "system".
type Actor string

// System is the actor for changes the service makes on its own (bootstrap, timers).
const System Actor = "system"

// Details is the free-form part of an audit record; it is stored as a JSON object.
type Details map[string]any

// appendAudit appends a record to tenantID's chain inside tx. Every mutating store method calls
// it in the same transaction as the change.
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, tenantID string, actor Actor, action, target string, details Details) error {
	if details == nil {
		details = Details{}
	}
	d, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("store.appendAudit: %w", err)
	}
	var seq int64
	var prev string
	// Updating the head first takes its row lock (PostgreSQL) or the write lock (SQLite), so
	// concurrent appenders to one chain queue here instead of forking it.
	err = tx.QueryRowContext(ctx, `UPDATE audit_heads SET seq = seq + 1 WHERE tenant_id = $1 RETURNING seq, hash`, tenantID).Scan(&seq, &prev)
	if err == sql.ErrNoRows {
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 1, $2)`, tenantID, audit.Genesis); err != nil {
			return fmt.Errorf("store.appendAudit: %w", err)
		}
		seq, prev = 1, audit.Genesis
	} else if err != nil {
		return fmt.Errorf("store.appendAudit: %w", err)
	}
	r := audit.Next(seq-1, prev, audit.Record{
		TenantID: tenantID, At: s.Now(), Actor: string(actor), Action: action, Target: target, Details: string(d),
	})
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_records (tenant_id, seq, at, actor, action, target, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.TenantID, r.Seq, micros(r.At), r.Actor, r.Action, r.Target, r.Details, r.PrevHash, r.Hash); err != nil {
		return fmt.Errorf("store.appendAudit: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_heads SET hash = $1 WHERE tenant_id = $2`, r.Hash, tenantID); err != nil {
		return fmt.Errorf("store.appendAudit: %w", err)
	}
	return nil
}

// AuditFilter narrows an audit listing.
type AuditFilter struct {
	Action string // exact action, e.g. "product.create"; empty for all
	Target string // exact target, e.g. "device/<id>"; empty for all
	// Newest lists newest first rather than in chain order.
	Newest bool
}

// ListAudit returns a tenant's audit records in chain order, newest last (or, with f.Newest,
// newest first).
func (s *Store) ListAudit(ctx context.Context, tenantID string, f AuditFilter, p Page) ([]audit.Record, string, error) {
	after, err := p.afterInt()
	if err != nil {
		return nil, "", fmt.Errorf("store.ListAudit: %w", err)
	}
	cmp, order := "seq > $2", "seq"
	if f.Newest {
		cmp, order = "($2 = 0 OR seq < $2)", "seq DESC"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT tenant_id, seq, at, actor, action, target, details, prev_hash, hash
		FROM audit_records WHERE tenant_id = $1 AND `+cmp+` AND ($3 = '' OR action = $3) AND ($5 = '' OR target = $5)
		ORDER BY `+order+` LIMIT $4`, tenantID, after, f.Action, p.limit()+1, f.Target)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListAudit: %w", err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, "", fmt.Errorf("store.ListAudit: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("store.ListAudit: %w", err)
	}
	out, next := trimPage(out, p, func(r audit.Record) string { return fmt.Sprint(r.Seq) })
	return out, next, nil
}

func scanAudit(rows *sql.Rows) (audit.Record, error) {
	var r audit.Record
	var at int64
	err := rows.Scan(&r.TenantID, &r.Seq, &at, &r.Actor, &r.Action, &r.Target, &r.Details, &r.PrevHash, &r.Hash)
	r.At = fromMicros(at)
	return r, err
}

// AuditVerification is the outcome of checking a tenant's chain.
type AuditVerification struct {
	Records  int64 // records in the chain
	Verified int64 // records from the start that checked out: all of them when the chain is intact
	Head     string
}

// VerifyAudit streams a tenant's whole chain through the verifier and checks that it ends at its
// head. It returns an error wrapping audit.ErrBroken when any record was altered, removed or
// reordered.
func (s *Store) VerifyAudit(ctx context.Context, tenantID string) (AuditVerification, error) {
	var headSeq int64
	headHash := audit.Genesis
	err := s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_heads WHERE tenant_id = $1`, tenantID).Scan(&headSeq, &headHash)
	if err != nil && err != sql.ErrNoRows {
		return AuditVerification{}, fmt.Errorf("store.VerifyAudit: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT tenant_id, seq, at, actor, action, target, details, prev_hash, hash
		FROM audit_records WHERE tenant_id = $1 ORDER BY seq`, tenantID)
	if err != nil {
		return AuditVerification{}, fmt.Errorf("store.VerifyAudit: %w", err)
	}
	defer rows.Close()
	// Read the whole chain even past a break, so that the answer counts every record.
	v := audit.NewVerifier()
	var total int64
	var broken error
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return AuditVerification{}, fmt.Errorf("store.VerifyAudit: %w", err)
		}
		total++
		if broken != nil {
			continue
		}
		if r.TenantID != tenantID {
			broken = public.Errorf(public.Conflict, "%w: record %d names another tenant", audit.ErrBroken, r.Seq)
		} else {
			broken = v.Add(r)
		}
	}
	if err := rows.Err(); err != nil {
		return AuditVerification{}, fmt.Errorf("store.VerifyAudit: %w", err)
	}
	if broken == nil {
		_, broken = v.Finish(headSeq, headHash)
	}
	out := AuditVerification{Records: total, Verified: v.Verified(), Head: headHash}
	if broken != nil {
		return out, fmt.Errorf("store.VerifyAudit: %w", broken)
	}
	return out, nil
}
