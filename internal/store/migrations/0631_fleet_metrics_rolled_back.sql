-- A rolled-back install (the device's state rolled_back) counts against its release like a failed
-- one, so /metrics counts both; the partial index covers both.
DROP INDEX install_reports_failed;
CREATE INDEX install_reports_failed ON install_reports (tenant_id) WHERE state IN ('failed', 'rolled_back');
