-- Rollouts and failure reporting: deployments with their per-device outcomes, crash reports
-- grouped by signature, and the coverage history. Releases are named by version within a product
-- until the updates area's release table lands; plans, criteria and faults are JSON documents
-- owned by internal/rollout and internal/failure.

-- Per-tenant counters hand out deployment sequence numbers under a row lock.
CREATE TABLE deployment_seqs (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
    seq       BIGINT NOT NULL
);

CREATE TABLE deployments (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    seq              BIGINT NOT NULL,
    product_id       TEXT NOT NULL REFERENCES products (id),
    group_id         TEXT NOT NULL REFERENCES device_groups (id),
    release_version  TEXT NOT NULL,
    previous_release TEXT NOT NULL,
    emergency        BOOLEAN NOT NULL,
    plan             TEXT NOT NULL,
    criteria         TEXT NOT NULL,
    state            TEXT NOT NULL,
    phase            BIGINT NOT NULL,
    phases_opened_at TEXT NOT NULL,
    soak_since       BIGINT NOT NULL,
    evidence_since   BIGINT NOT NULL,
    reason           TEXT NOT NULL,
    version          BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (tenant_id, seq)
);
CREATE INDEX deployments_group ON deployments (group_id, seq);
-- At most one deployment per group is active or paused.
CREATE UNIQUE INDEX deployments_one_open ON deployments (group_id) WHERE state IN ('active', 'paused');

-- The devices a deployment has seen in its group, with their phase and outcome. joined_at is
-- NULL for members at creation, else when the deployment first saw the device in the group.
CREATE TABLE deployment_devices (
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    device_id     TEXT NOT NULL REFERENCES devices (id),
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    phase         BIGINT NOT NULL,
    install       TEXT NOT NULL,
    detail        TEXT NOT NULL,
    joined_at     BIGINT,
    reported_at   BIGINT,
    PRIMARY KEY (deployment_id, device_id)
);
CREATE INDEX deployment_devices_device ON deployment_devices (device_id);

CREATE TABLE failure_groups (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    product_id        TEXT NOT NULL REFERENCES products (id),
    signature         TEXT NOT NULL,
    fault             TEXT NOT NULL,
    status            TEXT NOT NULL,
    report_count      BIGINT NOT NULL,
    first_seen        BIGINT NOT NULL,
    last_seen         BIGINT NOT NULL,
    first_release     TEXT NOT NULL,
    releases          TEXT NOT NULL,
    resolved_at       BIGINT,
    resolved_releases TEXT NOT NULL,
    regressed_in      TEXT NOT NULL,
    regressed_at      BIGINT,
    UNIQUE (tenant_id, product_id, signature)
);
CREATE INDEX failure_groups_tenant ON failure_groups (tenant_id, last_seen);

-- Report counts per group, release and deployment phase ('' and -1 outside a deployment).
CREATE TABLE failure_counts (
    group_id        TEXT NOT NULL REFERENCES failure_groups (id),
    release_version TEXT NOT NULL,
    deployment_id   TEXT NOT NULL,
    phase           BIGINT NOT NULL,
    report_count    BIGINT NOT NULL,
    PRIMARY KEY (group_id, release_version, deployment_id, phase)
);

-- One row per accepted report; the key makes a batch resent after a restart count once.
CREATE TABLE failure_reports (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    device_id       TEXT NOT NULL REFERENCES devices (id),
    report_id       TEXT NOT NULL,
    group_id        TEXT NOT NULL REFERENCES failure_groups (id),
    product_id      TEXT NOT NULL REFERENCES products (id),
    release_version TEXT NOT NULL,
    deployment_id   TEXT NOT NULL,
    phase           BIGINT NOT NULL,
    signature       TEXT NOT NULL,
    crashed_at      BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    report          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, report_id)
);
CREATE INDEX failure_reports_group ON failure_reports (group_id, crashed_at);
CREATE INDEX failure_reports_device ON failure_reports (device_id, crashed_at);
CREATE INDEX failure_reports_release ON failure_reports (tenant_id, product_id, release_version, signature);

-- Coverage history: from at on, the device runs release_version in the group; '' means it
-- left the group.
CREATE TABLE coverage_events (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    product_id      TEXT NOT NULL REFERENCES products (id),
    group_id        TEXT NOT NULL REFERENCES device_groups (id),
    device_id       TEXT NOT NULL REFERENCES devices (id),
    release_version TEXT NOT NULL,
    at              BIGINT NOT NULL
);
CREATE INDEX coverage_events_product ON coverage_events (tenant_id, product_id, at);
CREATE INDEX coverage_events_device ON coverage_events (device_id, at);
