-- The web console: sign-in sessions, and the indexes that keep its device list and fleet
-- overview to index reads at 100,000 devices.

-- A session is a signed-in browser. Only the hash of the cookie's secret is stored. A session
-- opened with an API token (kind 'token') ends when the token is revoked; one opened through
-- another sign-in (kind 'oidc') carries its own role and subject; a researcher's (kind
-- 'researcher') names the researcher and ends when the researcher's token is revoked.
CREATE TABLE console_sessions (
    id            TEXT PRIMARY KEY,
    hash          TEXT NOT NULL UNIQUE,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    kind          TEXT NOT NULL,
    token_id      TEXT REFERENCES api_tokens (id),
    researcher_id TEXT REFERENCES researchers (id),
    subject       TEXT NOT NULL,
    role          TEXT NOT NULL,
    service       BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
CREATE INDEX console_sessions_token ON console_sessions (token_id);

-- The device list's sort orders and filters, each a range read within one tenant.
CREATE INDEX devices_tenant_seen ON devices (tenant_id, (COALESCE(last_seen_at, 0)), id);
CREATE INDEX devices_tenant_release ON devices (tenant_id, current_release, id);
CREATE INDEX devices_tenant_attestation ON devices (tenant_id, attestation, id);
CREATE INDEX demoted_certificates_device ON demoted_certificates (device_id, not_after);
