-- /metrics counts refused attestations and failed installs at every scrape (store.FleetState);
-- these partial indexes keep each count to the rows it counts, not the whole history.
CREATE INDEX attestation_results_refused ON attestation_results (tenant_id, rule) WHERE granted = 'none';
CREATE INDEX install_reports_failed ON install_reports (tenant_id) WHERE state = 'failed';
