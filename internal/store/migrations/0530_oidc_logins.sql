-- Pending OpenID Connect sign-ins of the web console (internal/sso): between the redirect to the
-- identity provider and its answer, the PKCE verifier and the nonce wait here under the SHA-256
-- of the sign-in's state, so that any replica can finish a sign-in another began. A row is
-- taken (deleted) once, and one past expires_at (unix microseconds) is never used.
CREATE TABLE oidc_logins (
    state_hash TEXT PRIMARY KEY,
    verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oidc_logins_expires ON oidc_logins (expires_at);
