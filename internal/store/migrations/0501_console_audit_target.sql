-- A device page lists the device's own audit records (store.AuditFilter.Target).
CREATE INDEX audit_records_target ON audit_records (tenant_id, target, seq);
