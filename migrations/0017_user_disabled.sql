-- The operator can disable a user: logins are refused and every session ends at once (the
-- token generation moves on too).
ALTER TABLE app_user ADD COLUMN disabled_at timestamptz;
