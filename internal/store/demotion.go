package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// A revocation reaches the devices that run the revoked release at once, without waiting for
// them to attest again: the server remembers what each device measured in its last attestation
// that earned a certificate (device_measurements), and revoking a release demotes the unexpired
// normal certificates of every device whose last measurements hold a digest that no signed
// release of the product contains any more. The device API treats a demoted certificate as
// update-only and tells its device to attest again (doc/attestation.md, "Revocation").

// replaceMeasurements keeps the digests of a device's newest certificate-earning attestation.
func replaceMeasurements(ctx context.Context, tx *sql.Tx, deviceID string, digests []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM device_measurements WHERE device_id = $1`, deviceID); err != nil {
		return err
	}
	seen := make(map[string]bool, len(digests))
	args := []any{deviceID}
	var values []string
	for _, d := range digests {
		if seen[d] {
			continue
		}
		seen[d] = true
		args = append(args, d)
		values = append(values, fmt.Sprintf("($1, $%d)", len(args)))
	}
	if len(values) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO device_measurements (device_id, sha256) VALUES `+strings.Join(values, ", "), args...)
	return err
}

// Demotion is what DemoteRevoked did.
type Demotion struct {
	Devices      []string // the devices whose normal certificates are now update-only, by ID
	Certificates int      // how many certificates it demoted
}

// demoteRevoked runs inside the transaction that revokes a release (call it after the release's
// state changed): it demotes the unexpired normal certificates of every device of
// the product whose last attestation measured a digest that is now in revoked releases only, and
// appends one device.demote audit record naming the release when it demoted any.
func (s *Store) demoteRevoked(ctx context.Context, tx *sql.Tx, actor Actor, tenantID, releaseID string) (Demotion, error) {
	now := micros(s.Now())
	var productID string
	if err := tx.QueryRowContext(ctx, `SELECT product_id FROM releases WHERE tenant_id = $1 AND id = $2`, tenantID, releaseID).Scan(&productID); err != nil {
		return Demotion{}, fmt.Errorf("store.DemoteRevoked: %w", s.mapErr(err))
	}
	// Expired rows are this tenant's to clear: another tenant's stay untouched (and unlocked).
	if _, err := tx.ExecContext(ctx, `DELETE FROM demoted_certificates WHERE tenant_id = $1 AND not_after <= $2`, tenantID, now); err != nil {
		return Demotion{}, fmt.Errorf("store.DemoteRevoked: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT ar.cert_serial, ar.device_id, ar.cert_not_after
		FROM attestation_results ar JOIN devices d ON d.id = ar.device_id
		WHERE ar.tenant_id = $1 AND d.tenant_id = $1 AND d.product_id = $2 AND ar.granted = 'normal'
		  AND ar.cert_serial <> '' AND ar.cert_not_after > $3
		  AND NOT EXISTS (SELECT 1 FROM demoted_certificates x WHERE x.serial = ar.cert_serial)
		  AND EXISTS (SELECT 1 FROM device_measurements m
		    JOIN release_images ri ON ri.sha256 = m.sha256
		    JOIN releases r ON r.id = ri.release_id AND r.product_id = $2 AND r.state = 'revoked'
		    WHERE m.device_id = ar.device_id
		      AND NOT EXISTS (SELECT 1 FROM release_images si JOIN releases sr ON sr.id = si.release_id
		        WHERE sr.product_id = $2 AND sr.state = 'signed' AND si.sha256 = m.sha256))
		ORDER BY ar.device_id, ar.cert_serial`, tenantID, productID, now)
	if err != nil {
		return Demotion{}, fmt.Errorf("store.DemoteRevoked: %w", err)
	}
	type cert struct {
		serial, device string
		notAfter       int64
	}
	certs, err := scanAll(rows, func(r rowScanner) (cert, error) {
		var c cert
		err := r.Scan(&c.serial, &c.device, &c.notAfter)
		return c, err
	})
	if err != nil {
		return Demotion{}, fmt.Errorf("store.DemoteRevoked: %w", err)
	}
	var out Demotion
	for _, c := range certs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO demoted_certificates (serial, tenant_id, device_id, not_after, demoted_at)
			VALUES ($1, $2, $3, $4, $5)`, c.serial, tenantID, c.device, c.notAfter, now); err != nil {
			return Demotion{}, fmt.Errorf("store.DemoteRevoked: %w", err)
		}
		if n := len(out.Devices); n == 0 || out.Devices[n-1] != c.device {
			out.Devices = append(out.Devices, c.device)
		}
		out.Certificates++
	}
	if out.Certificates == 0 {
		return out, nil
	}
	if err := s.appendAudit(ctx, tx, tenantID, actor, "device.demote", "release/"+releaseID,
		Details{"devices": len(out.Devices), "certificates": out.Certificates}); err != nil {
		return Demotion{}, fmt.Errorf("store.DemoteRevoked: %w", err)
	}
	if err := s.notifyDemoted(ctx, tx, tenantID); err != nil {
		return Demotion{}, fmt.Errorf("store.DemoteRevoked: %w", err)
	}
	return out, nil
}

// DemotedUntold lists the devices of the tenant holding a demoted, unexpired certificate that
// were not told yet to attest again: the devices another replica's revocation demoted, for this
// replica to wake those waiting here.
func (s *Store) DemotedUntold(ctx context.Context, tenantID string) ([]string, error) {
	ids, err := queryIDs(ctx, s.db, `SELECT DISTINCT device_id FROM demoted_certificates
		WHERE tenant_id = $1 AND told_at IS NULL AND not_after > $2`, tenantID, micros(s.Now()))
	if err != nil {
		return nil, fmt.Errorf("store.DemotedUntold: %w", err)
	}
	return ids, nil
}

// CertificateDemoted reports whether a revocation demoted the device certificate with this
// serial (lowercase hex, as attestation results record it) to update-only. It runs on device
// requests, so it goes through the prepared-statement cache.
func (s *Store) CertificateDemoted(ctx context.Context, tenantID, serial string) (bool, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM demoted_certificates WHERE serial = $1 AND tenant_id = $2`, serial, tenantID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store.CertificateDemoted: %w", err)
	}
	return n > 0, nil
}

// TellDemoted records that the device holding the demoted certificate was told to attest again
// and reports whether this is the first time. The device API answers a demoted device's
// long-poll at once only the first time; later waits with the same certificate block as usual
// and carry the request at their end, so that an agent that ignores it does not loop.
func (s *Store) TellDemoted(ctx context.Context, serial string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE demoted_certificates SET told_at = $1 WHERE serial = $2 AND told_at IS NULL`,
		micros(s.Now()), serial)
	if err != nil {
		return false, fmt.Errorf("store.TellDemoted: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store.TellDemoted: %w", err)
	}
	return n == 1, nil
}
