package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/public"
)

// Device states.
const (
	DeviceEnrolled = "enrolled" // known by its identity key, not yet in a tenant
	DeviceClaimed  = "claimed"  // in a tenant, product and group
)

// Preauthorisation kinds.
const (
	PreauthEK  = "ek"  // hex SHA-256 of the EK's PKIX encoding
	PreauthKey = "key" // hex SHA-256 of the identity key's PKIX encoding: the device ID
)

// Enrollment is what a device enrolled with.
type Enrollment struct {
	DeviceID      string
	Attester      string
	AKPublic      []byte
	EKHash        string // "" for software attesters
	EKCertificate []byte // DER, or nil
	EKChain       []byte // concatenated DER intermediates, or nil
	Activated     bool
	CreatedAt     time.Time
}

// EnrollDevice records a device and its enrolment. A device that enrols again with the same
// identity keeps its record (and its activation) and gets Enrollment back unchanged. When a
// tenant preauthorised the device's EK or identity key hash, the device is claimed into that
// tenant's product and group in the same transaction, and the claim is audited.
func (s *Store) EnrollDevice(ctx context.Context, e Enrollment) (Enrollment, Device, error) {
	now := s.Now()
	var out Enrollment
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		existing, err := scanEnrollment(tx.QueryRowContext(ctx, `SELECT `+enrollmentColumns+` FROM device_enrollments WHERE device_id = $1`, e.DeviceID))
		if err == nil {
			out = existing
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		e.CreatedAt, e.Activated = now, false
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, state, attestation, current_release, target_release, created_at, updated_at)
			VALUES ($1, $2, '', '', '', $3, $3)`, e.DeviceID, DeviceEnrolled, micros(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO device_enrollments (device_id, attester, ak_public, ek_hash, ek_certificate, ek_chain, activated, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			e.DeviceID, e.Attester, e.AKPublic, e.EKHash, nullBytes(e.EKCertificate), nullBytes(e.EKChain), false, micros(now)); err != nil {
			return err
		}
		out = e
		var tenantID, productID, groupID, kind string
		err = tx.QueryRowContext(ctx, `SELECT tenant_id, product_id, group_id, kind FROM device_preauthorizations
			WHERE (kind = $1 AND hash = $2) OR (kind = $3 AND hash = $4 AND $4 <> '') ORDER BY kind DESC LIMIT 1`,
			PreauthKey, e.DeviceID, PreauthEK, e.EKHash).Scan(&tenantID, &productID, &groupID, &kind)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return s.claim(ctx, tx, System, tenantID, productID, groupID, e.DeviceID, Details{"preauthorized_by": kind})
	})
	if err != nil {
		return Enrollment{}, Device{}, fmt.Errorf("store.EnrollDevice: %w", s.mapErr(err))
	}
	d, err := s.deviceAnyTenant(ctx, e.DeviceID)
	if err != nil {
		return Enrollment{}, Device{}, fmt.Errorf("store.EnrollDevice: %w", err)
	}
	return out, d, nil
}

const enrollmentColumns = `device_id, attester, ak_public, ek_hash, ek_certificate, ek_chain, activated, created_at`

func scanEnrollment(row interface{ Scan(...any) error }) (Enrollment, error) {
	var e Enrollment
	var at int64
	if err := row.Scan(&e.DeviceID, &e.Attester, &e.AKPublic, &e.EKHash, &e.EKCertificate, &e.EKChain, &e.Activated, &at); err != nil {
		return Enrollment{}, err
	}
	e.CreatedAt = fromMicros(at)
	return e, nil
}

// EnrollmentByDevice returns a device's enrolment and its registry record, whatever tenant (if
// any) holds it: the device API finds devices by ID before it knows their tenant.
func (s *Store) EnrollmentByDevice(ctx context.Context, deviceID string) (Enrollment, Device, error) {
	ctx = s.quick(ctx)
	e, err := scanEnrollment(s.db.QueryRowContext(ctx, `SELECT `+enrollmentColumns+` FROM device_enrollments WHERE device_id = $1`, deviceID))
	if err != nil {
		return Enrollment{}, Device{}, fmt.Errorf("store.EnrollmentByDevice: %w", s.mapErr(err))
	}
	d, err := s.deviceAnyTenant(ctx, deviceID)
	if err != nil {
		return Enrollment{}, Device{}, fmt.Errorf("store.EnrollmentByDevice: %w", err)
	}
	return e, d, nil
}

func (s *Store) deviceAnyTenant(ctx context.Context, id string) (Device, error) {
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceColumns+deviceJoins+`WHERE d.id = $1`, id))
	return d, s.mapErr(err)
}

// ClaimDevice puts an enrolled, unclaimed device into a tenant's product and group. A device
// that does not exist, or that another tenant holds, is ErrNotFound (a tenant learns nothing of
// other tenants' devices); one this tenant already holds is ErrConflict.
func (s *Store) ClaimDevice(ctx context.Context, actor Actor, tenantID, deviceID, product, group string) (Device, error) {
	g, err := s.GroupByName(ctx, tenantID, product, group)
	if err != nil {
		return Device{}, fmt.Errorf("store.ClaimDevice: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var holder sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT tenant_id FROM devices WHERE id = $1`, deviceID).Scan(&holder); err != nil {
			return err
		}
		switch {
		case holder.Valid && holder.String == tenantID:
			return fmt.Errorf("%w: device %s is already claimed", ErrConflict, deviceID)
		case holder.Valid:
			return sql.ErrNoRows
		}
		return s.claim(ctx, tx, actor, tenantID, g.ProductID, g.ID, deviceID, Details{"product": product, "group": group})
	})
	if err != nil {
		return Device{}, fmt.Errorf("store.ClaimDevice: %w", s.mapErr(err))
	}
	return s.DeviceByID(ctx, tenantID, deviceID)
}

func (s *Store) claim(ctx context.Context, tx *sql.Tx, actor Actor, tenantID, productID, groupID, deviceID string, details Details) error {
	res, err := tx.ExecContext(ctx, `UPDATE devices SET tenant_id = $1, product_id = $2, group_id = $3, state = $4, updated_at = $5
		WHERE id = $6 AND tenant_id IS NULL`, tenantID, productID, groupID, DeviceClaimed, micros(s.Now()), deviceID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return sql.ErrNoRows
	}
	// The device joins its group's coverage now, on what it runs ("unknown" before its first
	// install), so a claimed device that never updates still counts as not covered.
	var current string
	if err := tx.QueryRowContext(ctx, `SELECT current_release FROM devices WHERE id = $1`, deviceID).Scan(&current); err != nil {
		return err
	}
	if current == "" {
		current = UnknownRelease
	}
	if err := s.AppendCoverageEvent(ctx, tx, tenantID, productID, groupID, deviceID, current); err != nil {
		return err
	}
	return s.appendAudit(ctx, tx, tenantID, actor, "device.claim", "device/"+deviceID, details)
}

// Preauthorize records that a tenant expects a device with this EK or identity key hash, to be
// claimed into product and group when it enrols. A device already enrolled with that hash is
// claimed at once. A hash another tenant preauthorised is ErrConflict.
func (s *Store) Preauthorize(ctx context.Context, actor Actor, tenantID, kind, hash, product, group string) error {
	if kind != PreauthEK && kind != PreauthKey {
		return fmt.Errorf("store.Preauthorize: %w", invalid("kind %q is not %s or %s", kind, PreauthEK, PreauthKey))
	}
	if !isHexSHA256(hash) {
		return fmt.Errorf("store.Preauthorize: %w", invalid("the hash must be a SHA-256 in 64 lowercase hex characters"))
	}
	g, err := s.GroupByName(ctx, tenantID, product, group)
	if err != nil {
		return fmt.Errorf("store.Preauthorize: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO device_preauthorizations (kind, hash, tenant_id, product_id, group_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, kind, hash, tenantID, g.ProductID, g.ID, micros(s.Now())); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, tx, tenantID, actor, "device.preauthorize", kind+"/"+hash, Details{"product": product, "group": group}); err != nil {
			return err
		}
		q := `SELECT d.id FROM devices d WHERE d.id = $1 AND d.tenant_id IS NULL`
		if kind == PreauthEK {
			q = `SELECT d.id FROM devices d JOIN device_enrollments e ON e.device_id = d.id WHERE e.ek_hash = $1 AND d.tenant_id IS NULL`
		}
		ids, err := queryIDs(ctx, tx, q, hash)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := s.claim(ctx, tx, actor, tenantID, g.ProductID, g.ID, id, Details{"preauthorized_by": kind}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store.Preauthorize: %w", s.mapErr(err))
	}
	return nil
}

// SetManufacturerCAs replaces the PEM bundle of TPM manufacturer CAs a tenant trusts for EK
// certificates. The caller has parsed it.
func (s *Store) SetManufacturerCAs(ctx context.Context, actor Actor, tenantID, pem string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := micros(s.Now())
		res, err := tx.ExecContext(ctx, `UPDATE manufacturer_cas SET pem = $1, updated_at = $2 WHERE tenant_id = $3`, pem, now, tenantID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO manufacturer_cas (tenant_id, pem, updated_at) VALUES ($1, $2, $3)`, tenantID, pem, now); err != nil {
				return err
			}
		}
		return s.appendAudit(ctx, tx, tenantID, actor, "manufacturer_cas.set", "tenant/"+tenantID, Details{"bytes": len(pem)})
	})
	if err != nil {
		return fmt.Errorf("store.SetManufacturerCAs: %w", s.mapErr(err))
	}
	return nil
}

// ManufacturerCAs returns a tenant's PEM bundle; ErrNotFound when it configured none.
func (s *Store) ManufacturerCAs(ctx context.Context, tenantID string) (string, error) {
	var pem string
	if err := s.db.QueryRowContext(ctx, `SELECT pem FROM manufacturer_cas WHERE tenant_id = $1`, tenantID).Scan(&pem); err != nil {
		return "", fmt.Errorf("store.ManufacturerCAs: %w", s.mapErr(err))
	}
	return pem, nil
}

// Challenge is an outstanding single-use nonce.
type Challenge struct {
	DeviceID         string
	Nonce            []byte
	ExpiresAt        time.Time
	ActivationDigest []byte
}

// PutChallenge stores a challenge. Expired challenges are swept at the same time.
func (s *Store) PutChallenge(ctx context.Context, c Challenge) error {
	now := s.Now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM attest_challenges WHERE expires_at < $1`, micros(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO attest_challenges (device_id, nonce, expires_at, activation_digest, created_at)
			VALUES ($1, $2, $3, $4, $5)`, c.DeviceID, c.Nonce, micros(c.ExpiresAt), nullBytes(c.ActivationDigest), micros(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("store.PutChallenge: %w", s.mapErr(err))
	}
	return nil
}

// TakeChallenge deletes and returns the challenge issued to deviceID with nonce; ErrNotFound
// when there is none. Only one of concurrent takers gets it. The caller checks expiry.
func (s *Store) TakeChallenge(ctx context.Context, deviceID string, nonce []byte) (Challenge, error) {
	c := Challenge{DeviceID: deviceID}
	var exp int64
	err := s.db.QueryRowContext(ctx, `DELETE FROM attest_challenges WHERE device_id = $1 AND nonce = $2
		RETURNING nonce, expires_at, activation_digest`, deviceID, nonce).Scan(&c.Nonce, &exp, &c.ActivationDigest)
	if err != nil {
		return Challenge{}, fmt.Errorf("store.TakeChallenge: %w", s.mapErr(err))
	}
	c.ExpiresAt = fromMicros(exp)
	return c, nil
}

// AttestationRecord is one verdict on a device.
type AttestationRecord struct {
	ID           string
	TenantID     string // "" while unclaimed
	DeviceID     string
	At           time.Time
	Status       string
	Granted      string // none, update-only, normal
	Reasons      []AttestationReason
	CertSerial   string
	CertNotAfter *time.Time
	Activated    bool // the verdict completed credential activation
	// BootState is the verifier's boot state as JSON (attest.BootState); nil when the
	// evidence was refused before it was read.
	BootState []byte
	// Rule names what decided the status (attest.Result.Rule).
	Rule string
	// Measured is the digests of the evidence's log. When the verdict issues a certificate to a
	// claimed device they replace the device's last measurements, which a revocation reads
	// (DemoteRevoked).
	Measured []string
}

// AttestationReason is one finding of the verifier.
type AttestationReason struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// RecordAttestation stores a verdict, updates the device's attestation state (and activation)
// and, for a claimed device, appends the audit record, all in one transaction.
func (s *Store) RecordAttestation(ctx context.Context, r AttestationRecord) (AttestationRecord, error) {
	r.At = s.Now()
	r.ID = newOrderedID("att", r.At)
	reasons, err := json.Marshal(r.Reasons)
	if err != nil {
		return AttestationRecord{}, fmt.Errorf("store.RecordAttestation: %w", err)
	}
	var notAfter sql.NullInt64
	if r.CertNotAfter != nil {
		notAfter = sql.NullInt64{Int64: micros(*r.CertNotAfter), Valid: true}
	}
	ctx = s.quick(ctx)
	err = s.groupTx(ctx, func(tx *sql.Tx) error {
		var tenant sql.NullString
		if r.TenantID != "" {
			tenant = sql.NullString{String: r.TenantID, Valid: true}
		}
		var boot sql.NullString
		if len(r.BootState) > 0 {
			boot = sql.NullString{String: string(r.BootState), Valid: true}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO attestation_results (id, tenant_id, device_id, at, status, granted, reasons, cert_serial, cert_not_after, boot_state, rule)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			r.ID, tenant, r.DeviceID, micros(r.At), r.Status, r.Granted, string(reasons), r.CertSerial, notAfter, boot, r.Rule); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET attestation = $1, last_seen_at = $2, updated_at = $2 WHERE id = $3`,
			r.Status, micros(r.At), r.DeviceID); err != nil {
			return err
		}
		if r.Activated {
			if _, err := tx.ExecContext(ctx, `UPDATE device_enrollments SET activated = $1 WHERE device_id = $2`, true, r.DeviceID); err != nil {
				return err
			}
		}
		if r.TenantID == "" {
			return nil
		}
		if r.CertSerial != "" {
			if err := replaceMeasurements(ctx, tx, r.DeviceID, r.Measured); err != nil {
				return err
			}
		}
		codes := make([]string, 0, len(r.Reasons))
		for _, c := range r.Reasons {
			codes = append(codes, c.Code)
		}
		return s.appendAudit(ctx, tx, r.TenantID, Actor("device:"+r.DeviceID), "device.attest", "device/"+r.DeviceID,
			Details{"status": r.Status, "granted": r.Granted, "reasons": codes, "rule": r.Rule, "cert_serial": r.CertSerial, "result": r.ID})
	})
	if err != nil {
		return AttestationRecord{}, fmt.Errorf("store.RecordAttestation: %w", s.mapErr(err))
	}
	return r, nil
}

// ListAttestations returns a device's verdicts, newest first, at most limit of them.
func (s *Store) ListAttestations(ctx context.Context, deviceID string, limit int) ([]AttestationRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, COALESCE(tenant_id, ''), device_id, at, status, granted, reasons, cert_serial, cert_not_after,
		COALESCE(boot_state, ''), rule FROM attestation_results WHERE device_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, deviceID, limit)
	if err != nil {
		return nil, fmt.Errorf("store.ListAttestations: %w", err)
	}
	defer rows.Close()
	var out []AttestationRecord
	for rows.Next() {
		var r AttestationRecord
		var at int64
		var reasons string
		var notAfter sql.NullInt64
		var boot string
		if err := rows.Scan(&r.ID, &r.TenantID, &r.DeviceID, &at, &r.Status, &r.Granted, &reasons, &r.CertSerial, &notAfter, &boot, &r.Rule); err != nil {
			return nil, fmt.Errorf("store.ListAttestations: %w", err)
		}
		r.At, r.CertNotAfter = fromMicros(at), fromNullMicros(notAfter)
		if boot != "" {
			r.BootState = []byte(boot)
		}
		if err := json.Unmarshal([]byte(reasons), &r.Reasons); err != nil {
			return nil, fmt.Errorf("store.ListAttestations: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store.ListAttestations: %w", err)
	}
	return out, nil
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// AttestationPolicy is a product's attestation policy.
type AttestationPolicy struct {
	// AcceptSoftware admits devices with a software attester (development boards). The
	// default, for a product that never set a policy, is to refuse them.
	AcceptSoftware bool
	// RequireSecureBoot and RequireBootLog demand measured-boot evidence (attest.Policy).
	RequireSecureBoot bool
	RequireBootLog    bool
	// BootDigests are extra Authenticode SHA-256 digests (lowercase hex) of EFI binaries the
	// product accepts beside its releases' boot images, for firmware a vendor updates.
	BootDigests []string
}

// MaxBootDigests bounds a product's extra boot digests.
const MaxBootDigests = 1024

// AttestationPolicy returns the policy of a tenant's product; the default policy when none
// was set.
func (s *Store) AttestationPolicy(ctx context.Context, tenantID, product string) (AttestationPolicy, error) {
	ctx = s.quick(ctx)
	var p AttestationPolicy
	var digests string
	err := s.db.QueryRowContext(ctx, `SELECT a.accept_software, a.require_secure_boot, a.require_boot_log, a.boot_digests
		FROM product_attestation_policies a
		JOIN products p ON p.id = a.product_id WHERE p.tenant_id = $1 AND p.name = $2`, tenantID, product).Scan(
		&p.AcceptSoftware, &p.RequireSecureBoot, &p.RequireBootLog, &digests)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.ProductByName(ctx, tenantID, product); err != nil {
			return AttestationPolicy{}, fmt.Errorf("store.AttestationPolicy: %w", err)
		}
		return AttestationPolicy{}, nil
	}
	if err != nil {
		return AttestationPolicy{}, fmt.Errorf("store.AttestationPolicy: %w", err)
	}
	if err := json.Unmarshal([]byte(digests), &p.BootDigests); err != nil {
		return AttestationPolicy{}, fmt.Errorf("store.AttestationPolicy: boot digests: %w", err)
	}
	return p, nil
}

// SetAttestationPolicy sets the policy of a tenant's product.
func (s *Store) SetAttestationPolicy(ctx context.Context, actor Actor, tenantID, product string, p AttestationPolicy) error {
	prod, err := s.ProductByName(ctx, tenantID, product)
	if err != nil {
		return fmt.Errorf("store.SetAttestationPolicy: %w", err)
	}
	if len(p.BootDigests) > MaxBootDigests {
		return fmt.Errorf("store.SetAttestationPolicy: %w", public.Errorf(public.Invalid, "at most %d boot digests", MaxBootDigests))
	}
	for _, d := range p.BootDigests {
		if !isHexSHA256(d) {
			return fmt.Errorf("store.SetAttestationPolicy: %w", public.Errorf(public.Invalid, "boot digest %q is not 64 lowercase hex characters", d))
		}
	}
	if p.BootDigests == nil {
		p.BootDigests = []string{}
	}
	digests, err := json.Marshal(p.BootDigests)
	if err != nil {
		return fmt.Errorf("store.SetAttestationPolicy: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		now := micros(s.Now())
		res, err := tx.ExecContext(ctx, `UPDATE product_attestation_policies SET accept_software = $1, require_secure_boot = $2,
			require_boot_log = $3, boot_digests = $4, updated_at = $5 WHERE product_id = $6`,
			p.AcceptSoftware, p.RequireSecureBoot, p.RequireBootLog, string(digests), now, prod.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO product_attestation_policies (product_id, tenant_id, accept_software,
				require_secure_boot, require_boot_log, boot_digests, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, prod.ID, tenantID, p.AcceptSoftware, p.RequireSecureBoot, p.RequireBootLog,
				string(digests), now); err != nil {
				return err
			}
		}
		return s.appendAudit(ctx, tx, tenantID, actor, "product.attestation_policy", "product/"+prod.ID,
			Details{"product": product, "accept_software": p.AcceptSoftware, "require_secure_boot": p.RequireSecureBoot,
				"require_boot_log": p.RequireBootLog, "boot_digests": len(p.BootDigests)})
	})
	if err != nil {
		return fmt.Errorf("store.SetAttestationPolicy: %w", s.mapErr(err))
	}
	return nil
}

// IsPreauthorized reports whether tenantID preauthorised the hash of this kind.
func (s *Store) IsPreauthorized(ctx context.Context, tenantID, kind, hash string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM device_preauthorizations WHERE tenant_id = $1 AND kind = $2 AND hash = $3`,
		tenantID, kind, hash).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store.IsPreauthorized: %w", err)
	}
	return n > 0, nil
}

// TenantNameByID returns a tenant's name, its SPIFFE trust domain. Like TenantByName it keeps a
// name found (a tenant is never renamed or deleted): every attestation asks for it.
func (s *Store) TenantNameByID(ctx context.Context, tenantID string) (string, error) {
	if name, ok := s.tenantNames.Load(tenantID); ok {
		return name.(string), nil
	}
	var name string
	if err := s.db.QueryRowContext(ctx, `SELECT name FROM tenants WHERE id = $1`, tenantID).Scan(&name); err != nil {
		return "", fmt.Errorf("store.TenantNameByID: %w", s.mapErr(err))
	}
	s.tenantNames.Store(tenantID, name)
	return name, nil
}

// MoveDevice moves a claimed device to another group of its product. Its coverage leaves the old
// group and joins the new one on the release it runs; the deployments of the old group stop
// counting it and the new group's active deployment picks it up at its next step. Moving a
// device to the group it is in changes nothing. A device the tenant has not claimed, or a group
// its product does not have, is ErrNotFound.
func (s *Store) MoveDevice(ctx context.Context, actor Actor, tenantID, deviceID, group string) (Device, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		dev, err := loadClaimedDevice(ctx, tx, tenantID, deviceID)
		if err != nil {
			return err
		}
		var to, product, from string
		err = tx.QueryRowContext(ctx, `SELECT g.id, p.name, old.name FROM device_groups g JOIN products p ON p.id = g.product_id
			JOIN device_groups old ON old.id = $4
			WHERE g.tenant_id = $1 AND g.product_id = $2 AND g.name = $3`, tenantID, dev.productID, group, dev.groupID).Scan(&to, &product, &from)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: the device's product has no group %q", ErrNotFound, group)
		} else if err != nil {
			return err
		}
		if to == dev.groupID {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET group_id = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4`,
			to, micros(s.Now()), tenantID, deviceID); err != nil {
			return err
		}
		current := dev.current
		if current == "" {
			current = UnknownRelease
		}
		if err := s.AppendCoverageEvent(ctx, tx, tenantID, dev.productID, dev.groupID, deviceID, ""); err != nil {
			return err
		}
		if err := s.AppendCoverageEvent(ctx, tx, tenantID, dev.productID, to, deviceID, current); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, tenantID, actor, "device.move", "device/"+deviceID, Details{"product": product, "from": from, "to": group})
	})
	if err != nil {
		return Device{}, fmt.Errorf("store.MoveDevice: %w", s.mapErr(err))
	}
	return s.DeviceByID(ctx, tenantID, deviceID)
}
