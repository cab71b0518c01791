-- Access tokens carry the user's token generation (claim `gen`); a password change or reset
-- bumps it, so every access token issued before stops working at once, not when it expires.
ALTER TABLE app_user ADD COLUMN token_generation integer NOT NULL DEFAULT 0;
