-- One certificate authority per tenant; its key is sealed with the server's key-encryption key.
CREATE TABLE tenant_cas (
    tenant_id     TEXT PRIMARY KEY REFERENCES tenants (id),
    cert_pem      TEXT NOT NULL,
    encrypted_key BYTES NOT NULL,
    created_at    BIGINT NOT NULL
);
