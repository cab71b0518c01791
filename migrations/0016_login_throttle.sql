-- Failed logins per account (the email as typed, lowercased, whether or not it exists) and per
-- client IP, in fixed windows: shared by every node, so the limits hold for the platform.
CREATE TABLE login_throttle (
    key          text PRIMARY KEY,          -- 'acct:<email>' or 'ip:<address>'
    failures     integer NOT NULL,
    window_start timestamptz NOT NULL
);
