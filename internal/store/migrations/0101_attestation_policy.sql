-- Per-product attestation policy. A product without a row refuses software attesters.
CREATE TABLE product_attestation_policies (
    product_id      TEXT PRIMARY KEY REFERENCES products (id),
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    accept_software BOOLEAN NOT NULL,
    updated_at      BIGINT NOT NULL
);
