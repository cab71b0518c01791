-- Tokia's public status routes and sessions (#14 items 8 and 10).
--
-- incident: what the operator declares (POST /admin/v1/incidents) and resolves
-- (POST /admin/v1/incidents/{id}/resolve); `GET /v1/incidents/active` lists the unresolved ones.
CREATE TABLE incident (
    incident_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    severity     text NOT NULL CHECK (severity IN ('minor', 'major', 'critical', 'maintenance')),
    message      text NOT NULL CHECK (length(message) <= 4000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz
);
CREATE INDEX incident_active_idx ON incident (created_at DESC) WHERE resolved_at IS NULL;

-- `GET /v1/me/sessions` groups one organization's events by session over a window: this
-- index serves the grouping and the `me/sessions/{id}` detail without a scan of the tenant.
CREATE INDEX usage_event_org_session_idx ON usage_event (organization_id, session_id, created_at)
    WHERE session_id IS NOT NULL;
