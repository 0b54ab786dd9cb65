-- Who installs an image on the device (issue 15): 'directory' (the agent's own slot folders),
-- 'rauc-bundle' (RAUC over D-Bus) or 'module:NAME' (a Mender update module, protocol v3).
-- Images recorded before types existed are directory images. A rauc-bundle also records its
-- manifest hash (lowercase hex SHA-256 of the bundle's manifest), which the signed targets
-- carry to the device; empty for other types.
ALTER TABLE images ADD COLUMN type TEXT NOT NULL DEFAULT 'directory';
ALTER TABLE images ADD COLUMN rauc_manifest_hash TEXT NOT NULL DEFAULT '';
