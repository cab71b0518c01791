-- The mail sender (src/mail.rs) delivers `outbox_email` over SMTP: each gateway node with a
-- database claims due rows with `FOR UPDATE SKIP LOCKED`, pushing `next_attempt_at` forward as
-- a lease, so two nodes never send one mail at once. A transient failure (4xx, connection
-- refused, timeout) sets the next attempt after a backoff; a permanent refusal (5xx), or the
-- last allowed attempt, sets `failed_at`. `sent_at` stays the mark of a delivered mail.
ALTER TABLE outbox_email
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN failed_at       timestamptz,
    -- the last SMTP or connection error, bounded by the sender (the password is never in it)
    ADD COLUMN last_error      text;

-- What the sender looks for: unsent, not failed for good, by when they are due.
CREATE INDEX outbox_email_due_idx ON outbox_email (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
