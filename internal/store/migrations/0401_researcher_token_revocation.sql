-- A tenant administrator can revoke a researcher's token; a revoked token is refused on every
-- researcher route. NULL while the token is valid.
ALTER TABLE researchers ADD COLUMN token_revoked_at BIGINT;
