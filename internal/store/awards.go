package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/rampartsec/rampart/internal/program"
	"github.com/rampartsec/rampart/internal/public"
)

// Ledger entry kinds.
const (
	LedgerAward   = "award"
	LedgerPayment = "payment"
)

// LedgerEntry is one line of the award ledger.
type LedgerEntry struct {
	ID        string
	Kind      string // award or payment
	Amount    int64
	Currency  string
	Award     *program.Award // for award entries: the computation and any override
	Note      string         // for payments
	Actor     string
	CreatedAt time.Time
}

// Ledger is a report's award ledger: every award decision and payment, oldest first.
type Ledger struct {
	Entries []LedgerEntry
}

// Awarded is the amount of the latest award decision, 0 when none.
func (l Ledger) Awarded() (int64, bool) {
	for _, e := range slices.Backward(l.Entries) {
		if e.Kind == LedgerAward {
			return e.Amount, true
		}
	}
	return 0, false
}

// Paid is the sum of the payments.
func (l Ledger) Paid() int64 {
	var n int64
	for _, e := range l.Entries {
		if e.Kind == LedgerPayment {
			n += e.Amount
		}
	}
	return n
}

// AwardReport records an award decision for a triaged or resolved report. award comes from
// program.ComputeAward, possibly with an override.
func (s *Store) AwardReport(ctx context.Context, actor Actor, tenantID string, number int64, award program.Award) (LedgerEntry, error) {
	d, err := json.Marshal(award)
	if err != nil {
		return LedgerEntry{}, fmt.Errorf("store.AwardReport: %w", err)
	}
	e := LedgerEntry{ID: NewID("awd"), Kind: LedgerAward, Amount: award.Amount(), Currency: award.Currency, Award: &award, Actor: string(actor), CreatedAt: s.Now()}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.reportForUpdate(ctx, tx, tenantID, number)
		if err != nil {
			return err
		}
		if !r.State.Awardable() {
			return public.Errorf(public.Conflict, "%w: report %d %s", program.ErrInvalidTransition, number, r.State.AwardRefusal())
		}
		if err := s.insertLedger(ctx, tx, tenantID, r.ID, e, string(d)); err != nil {
			return err
		}
		if r.AwardedAt == nil {
			if _, err := tx.ExecContext(ctx, `UPDATE reports SET awarded_at = $1, updated_at = $1 WHERE id = $2`, micros(e.CreatedAt), r.ID); err != nil {
				return err
			}
		}
		details := Details{"amount": e.Amount, "currency": e.Currency, "computed": award.Computed}
		if award.Override != nil {
			details["override_reason"] = award.Override.Reason
		}
		return s.event(ctx, tx, actor, r, "award", r.State, r.State, details)
	})
	if err != nil {
		return LedgerEntry{}, fmt.Errorf("store.AwardReport: %w", s.mapErr(err))
	}
	return e, nil
}

// RecordPayment records money paid against a report's award; the total paid may not exceed
// the amount awarded.
func (s *Store) RecordPayment(ctx context.Context, actor Actor, tenantID string, number int64, amount int64, note string) (LedgerEntry, error) {
	e := LedgerEntry{ID: NewID("pay"), Kind: LedgerPayment, Amount: amount, Note: note, Actor: string(actor), CreatedAt: s.Now()}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.reportForUpdate(ctx, tx, tenantID, number)
		if err != nil {
			return err
		}
		l, err := s.ledger(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		awarded, ok := l.Awarded()
		if !ok {
			return stateErrorf("report %d has no award to pay", number)
		}
		if amount <= 0 {
			return invalid("a payment must be a positive amount")
		}
		if l.Paid()+amount > awarded {
			return stateErrorf("paying %d would exceed the award of %d (paid so far %d)", amount, awarded, l.Paid())
		}
		e.Currency = l.Entries[len(l.Entries)-1].Currency
		d, _ := json.Marshal(map[string]string{"note": note})
		if err := s.insertLedger(ctx, tx, tenantID, r.ID, e, string(d)); err != nil {
			return err
		}
		return s.event(ctx, tx, actor, r, "payment", r.State, r.State, Details{"amount": amount, "note": note})
	})
	if err != nil {
		return LedgerEntry{}, fmt.Errorf("store.RecordPayment: %w", s.mapErr(err))
	}
	return e, nil
}

func (s *Store) insertLedger(ctx context.Context, tx *sql.Tx, tenantID, reportID string, e LedgerEntry, details string) error {
	seq, err := nextSeq(ctx, tx, "award_ledger", reportID)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO award_ledger (id, seq, tenant_id, report_id, kind, amount, currency, details, actor, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, e.ID, seq, tenantID, reportID, e.Kind, e.Amount, e.Currency, details, e.Actor, micros(e.CreatedAt))
	return err
}

func (s *Store) ledger(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, reportID string) (Ledger, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, kind, amount, currency, details, actor, created_at FROM award_ledger
		WHERE report_id = $1 ORDER BY seq`, reportID)
	if err != nil {
		return Ledger{}, err
	}
	defer rows.Close()
	var l Ledger
	for rows.Next() {
		var e LedgerEntry
		var details string
		var at int64
		if err := rows.Scan(&e.ID, &e.Kind, &e.Amount, &e.Currency, &details, &e.Actor, &at); err != nil {
			return Ledger{}, err
		}
		e.CreatedAt = fromMicros(at)
		if e.Kind == LedgerAward {
			var a program.Award
			if err := json.Unmarshal([]byte(details), &a); err != nil {
				return Ledger{}, err
			}
			e.Award = &a
		} else {
			var m map[string]string
			json.Unmarshal([]byte(details), &m)
			e.Note = m["note"]
		}
		l.Entries = append(l.Entries, e)
	}
	return l, rows.Err()
}

// ReportLedger returns a tenant's report's award ledger.
func (s *Store) ReportLedger(ctx context.Context, tenantID string, number int64) (Ledger, error) {
	r, err := s.ReportByNumber(ctx, tenantID, number)
	if err != nil {
		return Ledger{}, fmt.Errorf("store.ReportLedger: %w", err)
	}
	l, err := s.ledger(ctx, s.db, r.ID)
	if err != nil {
		return Ledger{}, fmt.Errorf("store.ReportLedger: %w", err)
	}
	return l, nil
}
