package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/coverage"
	"github.com/rampartsec/rampart/internal/program"
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
			return fmt.Errorf("%w: report %d %s", program.ErrInvalidTransition, number, r.State.AwardRefusal())
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
			return fmt.Errorf("%w: a payment must be a positive amount", ErrInvalid)
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

// Fix is a report's link to the releases it affects and the one that fixes it.
type Fix struct {
	Affected   []string
	Fixed      string
	ReleasedAt time.Time
	// RevokeAffected records, in the link's event and audit record, that the caller revokes
	// the affected releases in the same request (the API does it through the updates area).
	RevokeAffected bool
}

// ErrUnknownRelease: a fix names a version that is not a release of the report's product in
// the tenant.
var ErrUnknownRelease = errors.New("unknown release")

// linkedRelease is what a fix link needs to know of a release.
type linkedRelease struct {
	state     string
	createdAt time.Time
	signedAt  *time.Time
}

// publishedAt is when the release was published: its signing time, else its creation.
func (l linkedRelease) publishedAt() time.Time {
	if l.signedAt != nil {
		return *l.signedAt
	}
	return l.createdAt
}

// releaseOf reads a release of a tenant's product from the updates area's table.
func releaseOf(ctx context.Context, q querier, tenantID, product, version string) (linkedRelease, error) {
	var l linkedRelease
	var created int64
	var signed sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT r.state, r.created_at, r.signed_at FROM releases r JOIN products p ON p.id = r.product_id
		WHERE r.tenant_id = $1 AND p.tenant_id = $1 AND p.name = $2 AND r.version = $3`, tenantID, product, version).Scan(&l.state, &created, &signed)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("%w: %s has no release %s; create it with rampart release create first", ErrUnknownRelease, product, version)
	}
	if err != nil {
		return l, err
	}
	l.createdAt = fromMicros(created)
	if signed.Valid {
		t := fromMicros(signed.Int64)
		l.signedAt = &t
	}
	return l, nil
}

// LinkFix links a valid report to the releases of its product it affects and to the release
// that fixes it; a triaged report becomes resolved. Every version must be a release of the
// report's product in the tenant (ErrUnknownRelease otherwise), and the fix may not be a
// revoked release. The fix's release time is fix.ReleasedAt, or when zero the fix release's
// signing time (its creation time while unsigned). It records the first coverage sample.
// Linking again replaces the links. Nothing is written when it fails.
func (s *Store) LinkFix(ctx context.Context, actor Actor, tenantID string, number int64, fix Fix) (Report, error) {
	var r Report
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = s.reportForUpdate(ctx, tx, tenantID, number); err != nil {
			return err
		}
		if r.State != program.StateTriaged && r.State != program.StateResolved {
			return fmt.Errorf("%w: report %d is %s; only triaged or resolved reports get a fix", program.ErrInvalidTransition, number, r.State)
		}
		fixed, err := releaseOf(ctx, tx, tenantID, r.Product, fix.Fixed)
		if err != nil {
			return err
		}
		if fixed.state == "revoked" {
			return stateErrorf("release %s is revoked; a revoked release cannot be the fix", fix.Fixed)
		}
		for _, v := range fix.Affected {
			if _, err := releaseOf(ctx, tx, tenantID, r.Product, v); err != nil {
				return err
			}
		}
		if fix.ReleasedAt.IsZero() {
			fix.ReleasedAt = fixed.publishedAt()
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM report_releases WHERE report_id = $1`, r.ID); err != nil {
			return err
		}
		for _, v := range fix.Affected {
			if _, err := tx.ExecContext(ctx, `INSERT INTO report_releases (tenant_id, report_id, version, role) VALUES ($1, $2, $3, 'affected')`,
				tenantID, r.ID, v); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO report_releases (tenant_id, report_id, version, role, released_at) VALUES ($1, $2, $3, 'fixed', $4)`,
			tenantID, r.ID, fix.Fixed, micros(fix.ReleasedAt.UTC())); err != nil {
			return err
		}
		details := Details{"affected": fix.Affected, "fixed": fix.Fixed, "released_at": fix.ReleasedAt.UTC().Format(time.RFC3339)}
		if fix.RevokeAffected {
			details["revoke_affected"] = true
		}
		if err := s.event(ctx, tx, actor, r, "link_fix", r.State, r.State, details); err != nil {
			return err
		}
		if _, err := s.sampleCoverage(ctx, tx, r); err != nil {
			return err
		}
		if r.State == program.StateTriaged {
			p, err := s.programByName(ctx, tx, tenantID, r.ProgramName)
			if err != nil {
				return err
			}
			return s.transition(ctx, tx, actor, p.Rules, &r, Transition{To: program.StateResolved})
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("store.LinkFix: %w", s.mapErr(err))
	}
	return r, nil
}

// ReportFix returns a report's fix links; a report without a fix is ErrNotFixed.
func (s *Store) ReportFix(ctx context.Context, tenantID string, number int64) (Fix, error) {
	r, err := s.ReportByNumber(ctx, tenantID, number)
	if err != nil {
		return Fix{}, fmt.Errorf("store.ReportFix: %w", err)
	}
	f, err := s.reportFix(ctx, s.db, r.ID)
	if err != nil {
		return Fix{}, fmt.Errorf("store.ReportFix: %w", err)
	}
	return f, nil
}

func (s *Store) reportFix(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, reportID string) (Fix, error) {
	rows, err := q.QueryContext(ctx, `SELECT version, role, released_at FROM report_releases WHERE report_id = $1 ORDER BY role, version`, reportID)
	if err != nil {
		return Fix{}, err
	}
	defer rows.Close()
	var f Fix
	for rows.Next() {
		var v, role string
		var at sql.NullInt64
		if err := rows.Scan(&v, &role, &at); err != nil {
			return Fix{}, err
		}
		if role == "fixed" {
			f.Fixed = v
			f.ReleasedAt = fromMicros(at.Int64)
		} else {
			f.Affected = append(f.Affected, v)
		}
	}
	if err := rows.Err(); err != nil {
		return Fix{}, err
	}
	if f.Fixed == "" {
		return Fix{}, ErrNotFixed
	}
	return f, nil
}

// countCoverage counts the report's product's claimed devices and those still running an
// affected release, at the store's now.
func (s *Store) countCoverage(ctx context.Context, q querier, r Report, f Fix) (program.CoverageSample, error) {
	sample := program.CoverageSample{At: s.Now()}
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices d JOIN products p ON p.id = d.product_id
		WHERE d.tenant_id = $1 AND p.name = $2`, r.TenantID, r.Product).Scan(&sample.Total); err != nil {
		return program.CoverageSample{}, err
	}
	var exposed int64
	if len(f.Affected) > 0 {
		args := []any{r.TenantID, r.Product}
		ph := make([]string, len(f.Affected))
		for i, v := range f.Affected {
			args = append(args, v)
			ph[i] = fmt.Sprintf("$%d", i+3)
		}
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices d JOIN products p ON p.id = d.product_id
			WHERE d.tenant_id = $1 AND p.name = $2 AND d.current_release IN (`+strings.Join(ph, ", ")+`)`, args...).Scan(&exposed); err != nil {
			return program.CoverageSample{}, err
		}
	}
	sample.Covered = sample.Total - exposed
	return sample, nil
}

// sampleCoverage counts the coverage of the report's fix now and stores the sample.
func (s *Store) sampleCoverage(ctx context.Context, tx *sql.Tx, r Report) (program.CoverageSample, error) {
	f, err := s.reportFix(ctx, tx, r.ID)
	if err != nil {
		return program.CoverageSample{}, err
	}
	sample, err := s.countCoverage(ctx, tx, r, f)
	if err != nil {
		return program.CoverageSample{}, err
	}
	// One sample per instant: a second sample at the same microsecond replaces the first.
	if _, err := tx.ExecContext(ctx, `DELETE FROM report_coverage WHERE report_id = $1 AND at = $2`, r.ID, micros(sample.At)); err != nil {
		return program.CoverageSample{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO report_coverage (tenant_id, report_id, at, covered, total) VALUES ($1, $2, $3, $4, $5)`,
		r.TenantID, r.ID, micros(sample.At), sample.Covered, sample.Total); err != nil {
		return program.CoverageSample{}, err
	}
	return sample, nil
}

// CurrentCoverage counts the coverage of a report's fix now, without recording it.
func (s *Store) CurrentCoverage(ctx context.Context, tenantID string, number int64) (program.CoverageSample, error) {
	r, err := s.ReportByNumber(ctx, tenantID, number)
	if err != nil {
		return program.CoverageSample{}, fmt.Errorf("store.CurrentCoverage: %w", err)
	}
	f, err := s.reportFix(ctx, s.db, r.ID)
	if err != nil {
		return program.CoverageSample{}, fmt.Errorf("store.CurrentCoverage: %w", err)
	}
	c, err := s.countCoverage(ctx, s.db, r, f)
	if err != nil {
		return program.CoverageSample{}, fmt.Errorf("store.CurrentCoverage: %w", err)
	}
	return c, nil
}

// SampleCoverage records the current coverage of a report's fix and returns it.
func (s *Store) SampleCoverage(ctx context.Context, tenantID string, number int64) (program.CoverageSample, error) {
	var out program.CoverageSample
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.reportForUpdate(ctx, tx, tenantID, number)
		if err != nil {
			return err
		}
		out, err = s.sampleCoverage(ctx, tx, r)
		return err
	})
	if err != nil {
		return program.CoverageSample{}, fmt.Errorf("store.SampleCoverage: %w", s.mapErr(err))
	}
	return out, nil
}

// SampleAllCoverage records a coverage sample for every fixed report whose fix has not yet
// reached the whole fleet; the server runs it periodically. It returns how many it sampled.
func (s *Store) SampleAllCoverage(ctx context.Context) (int, error) {
	todo, err := s.reportKeys(ctx, `SELECT r.tenant_id, r.number FROM reports r
		WHERE EXISTS (SELECT 1 FROM report_releases f WHERE f.report_id = r.id AND f.role = 'fixed')
		AND NOT EXISTS (SELECT 1 FROM report_coverage c WHERE c.report_id = r.id AND c.total > 0 AND c.covered = c.total)`)
	if err != nil {
		return 0, fmt.Errorf("store.SampleAllCoverage: %w", err)
	}
	for _, k := range todo {
		if _, err := s.SampleCoverage(ctx, k.tenant, k.number); err != nil {
			return 0, fmt.Errorf("store.SampleAllCoverage: %w", err)
		}
	}
	return len(todo), nil
}

// CoverageHistory returns a report's coverage samples, oldest first.
func (s *Store) CoverageHistory(ctx context.Context, tenantID string, number int64) ([]program.CoverageSample, error) {
	r, err := s.ReportByNumber(ctx, tenantID, number)
	if err != nil {
		return nil, fmt.Errorf("store.CoverageHistory: %w", err)
	}
	out, err := s.coverageHistory(ctx, r.ID)
	if err != nil {
		return nil, fmt.Errorf("store.CoverageHistory: %w", err)
	}
	return out, nil
}

func (s *Store) coverageHistory(ctx context.Context, reportID string) ([]program.CoverageSample, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, covered, total FROM report_coverage WHERE report_id = $1 ORDER BY at`, reportID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []program.CoverageSample
	for rows.Next() {
		var c program.CoverageSample
		var at int64
		if err := rows.Scan(&at, &c.Covered, &c.Total); err != nil {
			return nil, err
		}
		c.At = fromMicros(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// ExposedDevices lists the IDs of the report's product's devices still running an affected
// release, at most limit of them.
func (s *Store) ExposedDevices(ctx context.Context, tenantID string, number int64, limit int) ([]string, error) {
	r, err := s.ReportByNumber(ctx, tenantID, number)
	if err != nil {
		return nil, fmt.Errorf("store.ExposedDevices: %w", err)
	}
	f, err := s.reportFix(ctx, s.db, r.ID)
	if err != nil {
		return nil, fmt.Errorf("store.ExposedDevices: %w", err)
	}
	out, err := s.exposedDevices(ctx, r, f, limit)
	if err != nil {
		return nil, fmt.Errorf("store.ExposedDevices: %w", err)
	}
	return out, nil
}

func (s *Store) exposedDevices(ctx context.Context, r Report, f Fix, limit int) ([]string, error) {
	out := []string{}
	if len(f.Affected) == 0 {
		return out, nil
	}
	args := []any{r.TenantID, r.Product, limit}
	ph := make([]string, len(f.Affected))
	for i, v := range f.Affected {
		args = append(args, v)
		ph[i] = fmt.Sprintf("$%d", i+4)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT d.id FROM devices d JOIN products p ON p.id = d.product_id
		WHERE d.tenant_id = $1 AND p.name = $2 AND d.current_release IN (`+strings.Join(ph, ", ")+`) ORDER BY d.id LIMIT $3`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// ReportTimeline gathers the timestamps and coverage history the metrics need.
func (s *Store) ReportTimeline(ctx context.Context, tenantID string, number int64) (program.Timeline, error) {
	r, err := s.ReportByNumber(ctx, tenantID, number)
	if err != nil {
		return program.Timeline{}, fmt.Errorf("store.ReportTimeline: %w", err)
	}
	t, _, err := s.timeline(ctx, r)
	if err != nil {
		return program.Timeline{}, fmt.Errorf("store.ReportTimeline: %w", err)
	}
	return t, nil
}

// timeline returns the report's timeline and its fix (nil when none).
func (s *Store) timeline(ctx context.Context, r Report) (program.Timeline, *Fix, error) {
	t := program.Timeline{SubmittedAt: r.SubmittedAt,
		FirstResponseAt: derefTime(r.FirstResponseAt), TriagedAt: derefTime(r.TriagedAt), AwardedAt: derefTime(r.AwardedAt)}
	f, err := s.reportFix(ctx, s.db, r.ID)
	switch {
	case errors.Is(err, ErrNotFixed):
		return t, nil, nil
	case err != nil:
		return program.Timeline{}, nil, err
	}
	t.FixReleasedAt = f.ReleasedAt
	// The fleet's recorded history of releases is exact; the periodic samples are the fallback
	// for products whose devices have no history.
	if t.Coverage, err = s.historyCoverage(ctx, r, f); err != nil {
		return program.Timeline{}, nil, err
	}
	if t.Coverage == nil {
		if t.Coverage, err = s.coverageHistory(ctx, r.ID); err != nil {
			return program.Timeline{}, nil, err
		}
	}
	return t, &f, nil
}

// historyCoverage derives the coverage of a fix from the product's coverage history (which
// release each device ran since when, kept by the rollouts area): one sample as the fleet stood
// when the fix was released, then one at each later instant where the covered share changed by
// at least a tenth of a percent. A device counts as covered when it runs a release not listed
// as affected, as in the samples. It returns nil when the product has no history.
func (s *Store) historyCoverage(ctx context.Context, r Report, f Fix) ([]program.CoverageSample, error) {
	events, err := s.CoverageEvents(ctx, r.TenantID, r.Product, "")
	if errors.Is(err, ErrNotFound) || len(events) == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return CoverageFromHistory(events, f.Affected, f.ReleasedAt), nil
}

// CoverageFromHistory replays coverage events (in time order, departures before arrivals at one
// instant, as CoverageEvents returns them) and returns the coverage of a fix released at since:
// the fleet as it stood at since, then a sample at each later instant where the covered share,
// in thousandths, changed (so every 50/90/99/100 % crossing is kept), and the last instant.
func CoverageFromHistory(events []coverage.Event, affected []string, since time.Time) []program.CoverageSample {
	isAffected := make(map[string]bool, len(affected))
	for _, v := range affected {
		isAffected[v] = true
	}
	current := map[string]string{}
	var covered int64
	apply := func(e coverage.Event) {
		if prev, ok := current[e.DeviceID]; ok && !isAffected[prev] {
			covered--
		}
		if e.Release == "" {
			delete(current, e.DeviceID)
			return
		}
		current[e.DeviceID] = e.Release
		if !isAffected[e.Release] {
			covered++
		}
	}
	perMille := func(c program.CoverageSample) int64 {
		if c.Total == 0 {
			return -1
		}
		return c.Covered * 1000 / c.Total
	}
	i := 0
	for ; i < len(events) && !events[i].At.After(since); i++ {
		apply(events[i])
	}
	out := []program.CoverageSample{{At: since, Covered: covered, Total: int64(len(current))}}
	// The latest instant not kept, so that the series ends on the last state.
	var pending program.CoverageSample
	hasPending := false
	for ; i < len(events); i++ {
		apply(events[i])
		if i+1 < len(events) && events[i+1].At.Equal(events[i].At) {
			continue // judge an instant once all its events are applied
		}
		c := program.CoverageSample{At: events[i].At, Covered: covered, Total: int64(len(current))}
		if perMille(c) != perMille(out[len(out)-1]) {
			out = append(out, c)
			hasPending = false
		} else {
			pending, hasPending = c, true
		}
	}
	if last := out[len(out)-1]; hasPending && (pending.Covered != last.Covered || pending.Total != last.Total) {
		out = append(out, pending)
	}
	return out
}

// ReportDetail is everything the triage team's view of a report shows.
type ReportDetail struct {
	Report   Report
	Ledger   Ledger
	Fix      *Fix                   // nil until a fix is linked
	Current  program.CoverageSample // the fix's coverage now (zero without a fix)
	Exposed  []string               // devices still on an affected release, at most the limit asked
	Revoked  []string               // the affected releases that are revoked
	Timeline program.Timeline
}

// ReportDetail reads a report with its ledger, fix, current coverage, up to exposedLimit
// exposed devices and its timeline.
func (s *Store) ReportDetail(ctx context.Context, tenantID string, number int64, exposedLimit int) (ReportDetail, error) {
	var d ReportDetail
	var err error
	if d.Report, err = s.ReportByNumber(ctx, tenantID, number); err != nil {
		return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
	}
	if d.Ledger, err = s.ledger(ctx, s.db, d.Report.ID); err != nil {
		return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
	}
	if d.Timeline, d.Fix, err = s.timeline(ctx, d.Report); err != nil {
		return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
	}
	if d.Fix != nil {
		if d.Current, err = s.countCoverage(ctx, s.db, d.Report, *d.Fix); err != nil {
			return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
		}
		if d.Exposed, err = s.exposedDevices(ctx, d.Report, *d.Fix, exposedLimit); err != nil {
			return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
		}
		for _, v := range d.Fix.Affected {
			l, err := releaseOf(ctx, s.db, tenantID, d.Report.Product, v)
			if errors.Is(err, ErrUnknownRelease) {
				continue // links made before releases were checked
			}
			if err != nil {
				return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
			}
			if l.state == "revoked" {
				d.Revoked = append(d.Revoked, v)
			}
		}
	}
	return d, nil
}

// ProgramFacts gathers what program.Summarize needs: every applicant and every report.
func (s *Store) ProgramFacts(ctx context.Context, tenantID, programName string) (Program, []program.ResearcherFacts, []program.ReportFacts, error) {
	p, err := s.ProgramByName(ctx, tenantID, programName)
	if err != nil {
		return Program{}, nil, nil, fmt.Errorf("store.ProgramFacts: %w", err)
	}
	var applicants []program.ResearcherFacts
	for pg := (Page{Limit: MaxPageSize}); ; {
		as, next, err := s.ListApplications(ctx, tenantID, programName, pg)
		if err != nil {
			return Program{}, nil, nil, fmt.Errorf("store.ProgramFacts: %w", err)
		}
		for _, a := range as {
			if a.Status == ApplicationInvited {
				continue // an invitation is not an application until completed
			}
			applicants = append(applicants, program.ResearcherFacts{Country: a.Country, Accepted: a.Status == ApplicationAccepted})
		}
		if next == "" {
			break
		}
		pg.After = next
	}
	var reports []program.ReportFacts
	for pg := (Page{Limit: MaxPageSize}); ; {
		rs, next, err := s.ListReports(ctx, tenantID, ReportFilter{Program: programName}, pg)
		if err != nil {
			return Program{}, nil, nil, fmt.Errorf("store.ProgramFacts: %w", err)
		}
		for _, r := range rs {
			f := program.ReportFacts{State: r.State, Severity: r.Severity}
			l, err := s.ledger(ctx, s.db, r.ID)
			if err != nil {
				return Program{}, nil, nil, fmt.Errorf("store.ProgramFacts: %w", err)
			}
			f.Award, f.Awarded = l.Awarded()
			if f.Timeline, _, err = s.timeline(ctx, r); err != nil {
				return Program{}, nil, nil, fmt.Errorf("store.ProgramFacts: %w", err)
			}
			f.FixLinked = !f.Timeline.FixReleasedAt.IsZero()
			reports = append(reports, f)
		}
		if next == "" {
			break
		}
		pg.After = next
	}
	return p, applicants, reports, nil
}

// AffectedRelease is a release of a product that fixed reports name as affected.
type AffectedRelease struct {
	Version string
	Reports []int64 // the reports, by number
	FixedIn []string
}

// AffectedReleases lists the releases of a tenant's product that reports with a linked fix
// name as affected, by version: what the update side revokes.
func (s *Store) AffectedReleases(ctx context.Context, tenantID, product string) ([]AffectedRelease, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT a.version, r.number, f.version FROM report_releases a
		JOIN reports r ON r.id = a.report_id
		JOIN report_releases f ON f.report_id = a.report_id AND f.role = 'fixed'
		WHERE a.tenant_id = $1 AND r.product = $2 AND a.role = 'affected'
		ORDER BY a.version, r.number`, tenantID, product)
	if err != nil {
		return nil, fmt.Errorf("store.AffectedReleases: %w", err)
	}
	defer rows.Close()
	var out []AffectedRelease
	for rows.Next() {
		var v, fixed string
		var n int64
		if err := rows.Scan(&v, &n, &fixed); err != nil {
			return nil, fmt.Errorf("store.AffectedReleases: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Version != v {
			out = append(out, AffectedRelease{Version: v})
		}
		last := &out[len(out)-1]
		last.Reports = append(last.Reports, n)
		if !slices.Contains(last.FixedIn, fixed) {
			last.FixedIn = append(last.FixedIn, fixed)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store.AffectedReleases: %w", err)
	}
	return out, nil
}
