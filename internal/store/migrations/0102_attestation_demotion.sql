-- Revocation reaches devices at once: the digests each device measured in its last attestation
-- that earned a certificate, and the normal certificates a revocation demoted to update-only
-- before their devices attested again.

-- Replaced at every attestation that issues a certificate.
CREATE TABLE device_measurements (
    device_id TEXT NOT NULL REFERENCES devices (id),
    sha256    TEXT NOT NULL,
    PRIMARY KEY (device_id, sha256)
);
CREATE INDEX device_measurements_digest ON device_measurements (sha256);

-- A normal certificate listed here is treated as update-only until it expires.
CREATE TABLE demoted_certificates (
    serial     TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    device_id  TEXT NOT NULL REFERENCES devices (id),
    not_after  BIGINT NOT NULL,
    demoted_at BIGINT NOT NULL
);
CREATE INDEX demoted_certificates_expiry ON demoted_certificates (not_after);
