-- Measured boot (issue 19): a product's boot policy, and the boot state and deciding rule of
-- each attestation result. boot_digests is a JSON array of lowercase hex Authenticode
-- SHA-256 digests the product accepts beside its releases' boot images.
ALTER TABLE product_attestation_policies ADD COLUMN require_secure_boot BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE product_attestation_policies ADD COLUMN require_boot_log BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE product_attestation_policies ADD COLUMN boot_digests TEXT NOT NULL DEFAULT '[]';
ALTER TABLE attestation_results ADD COLUMN boot_state TEXT;
ALTER TABLE attestation_results ADD COLUMN rule TEXT NOT NULL DEFAULT '';
