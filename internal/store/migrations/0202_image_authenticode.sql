-- The Authenticode SHA-256 of an image that is a PE/EFI binary (shim, a bootloader, a kernel
-- with an EFI stub, a unified kernel image): the digest UEFI firmware measures into PCR 4,
-- and so the boot reference value attestation compares a device's firmware log with. Empty
-- for images that are not PE binaries.
ALTER TABLE images ADD COLUMN authenticode TEXT NOT NULL DEFAULT '';
