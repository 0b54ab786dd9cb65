-- The deployment stepper reads again only what changed since its last step (store/step_cache.go):
-- a group's coverage events, a deployment's outcomes and a tenant's crash reports since a time.
CREATE INDEX coverage_events_group ON coverage_events (group_id, at);
CREATE INDEX deployment_devices_reported ON deployment_devices (deployment_id, reported_at);
CREATE INDEX failure_reports_received ON failure_reports (tenant_id, received_at);
