-- Who changed what from where: the kind of actor (user, operator, cli, system), the client's
-- address as the gateway saw it, and a redacted before/after of the changed object.
ALTER TABLE audit_log
    ADD COLUMN actor     text NOT NULL DEFAULT 'system',
    ADD COLUMN source_ip text,
    ADD COLUMN before    jsonb,
    ADD COLUMN after     jsonb;
CREATE INDEX audit_log_time_idx ON audit_log (created_at DESC);
