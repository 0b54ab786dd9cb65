-- Signed updates: each tenant's TUF image repository and director root, content-addressed
-- images, releases grouping them per product, the deltas built at signing time, and each
-- device's director metadata.
CREATE TABLE tuf_repos (
    tenant_id      TEXT PRIMARY KEY REFERENCES tenants (id),
    state          TEXT NOT NULL,
    director_roots TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE images (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    sha256           TEXT NOT NULL,
    component        TEXT NOT NULL,
    version          TEXT NOT NULL,
    security_version BIGINT NOT NULL,
    length           BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sha256)
);

CREATE TABLE releases (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    product_id      TEXT NOT NULL REFERENCES products (id),
    version         TEXT NOT NULL,
    state           TEXT NOT NULL,
    targets_version BIGINT NOT NULL,
    revoked_reason  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    signed_at       BIGINT,
    revoked_at      BIGINT,
    UNIQUE (product_id, version)
);
CREATE INDEX releases_tenant ON releases (tenant_id, product_id, created_at);

CREATE TABLE release_images (
    release_id TEXT NOT NULL REFERENCES releases (id),
    component  TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    PRIMARY KEY (release_id, component)
);

CREATE TABLE release_deltas (
    release_id  TEXT NOT NULL REFERENCES releases (id),
    from_sha256 TEXT NOT NULL,
    to_sha256   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    length      BIGINT NOT NULL,
    PRIMARY KEY (release_id, from_sha256, to_sha256)
);

CREATE TABLE director_metadata (
    device_id  TEXT PRIMARY KEY REFERENCES devices (id),
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    version    BIGINT NOT NULL,
    product    TEXT NOT NULL,
    release    TEXT NOT NULL,
    files      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX director_metadata_expiry ON director_metadata (expires_at);

-- Install states reported by devices (downloading, installing, installed, committed, failed).
CREATE TABLE install_reports (
    id        TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    state     TEXT NOT NULL,
    release   TEXT NOT NULL,
    reason    TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX install_reports_device ON install_reports (device_id, at);
