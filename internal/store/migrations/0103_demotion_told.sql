-- When the device API first told the device holding a demoted certificate to attest again, so
-- that an agent that does not act on it is not answered at once over and over (a busy loop).
ALTER TABLE demoted_certificates ADD COLUMN told_at BIGINT;
