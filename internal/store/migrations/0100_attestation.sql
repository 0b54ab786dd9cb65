-- Attestation: what each device enrolled with, the TPM manufacturer CAs a tenant trusts,
-- devices a tenant preauthorised, outstanding challenges and every attestation result.

-- One row per enrolled device: the identity key the verifier checks quotes against, and
-- whether the device answered its credential activation challenge.
CREATE TABLE device_enrollments (
    device_id      TEXT PRIMARY KEY REFERENCES devices (id),
    attester       TEXT NOT NULL,
    ak_public      BYTES NOT NULL,
    ek_hash        TEXT NOT NULL,
    ek_certificate BYTES,
    ek_chain       BYTES,
    activated      BOOLEAN NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX device_enrollments_ek ON device_enrollments (ek_hash);

-- PEM bundle of the TPM manufacturer root and intermediate certificates a tenant trusts.
CREATE TABLE manufacturer_cas (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (id),
    pem        TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Devices a tenant expects, by the hash of their EK ('ek') or identity key ('key', which is
-- the device ID). A matching device is claimed into the product and group at enrolment.
CREATE TABLE device_preauthorizations (
    kind       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    product_id TEXT NOT NULL REFERENCES products (id),
    group_id   TEXT NOT NULL REFERENCES device_groups (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, hash)
);
CREATE INDEX device_preauthorizations_tenant ON device_preauthorizations (tenant_id, kind, hash);

-- Single-use nonces; taking one deletes it.
CREATE TABLE attest_challenges (
    device_id         TEXT NOT NULL,
    nonce             BYTES NOT NULL,
    expires_at        BIGINT NOT NULL,
    activation_digest BYTES,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
CREATE INDEX attest_challenges_expiry ON attest_challenges (expires_at);

-- Every verdict, refusals included; tenant_id is NULL while the device is unclaimed.
CREATE TABLE attestation_results (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT REFERENCES tenants (id),
    device_id      TEXT NOT NULL REFERENCES devices (id),
    at             BIGINT NOT NULL,
    status         TEXT NOT NULL,
    granted        TEXT NOT NULL,
    reasons        TEXT NOT NULL,
    cert_serial    TEXT NOT NULL,
    cert_not_after BIGINT
);
CREATE INDEX attestation_results_device ON attestation_results (device_id, at);
