-- PyTake's flow automations (issue 15 item 7): a flow run for a list of contacts, as durable
-- jobs (one per contact) that a runner in the admin app claims with FOR UPDATE SKIP LOCKED
-- under a lease, so a crashed runner's jobs are claimed again after the lease ends.

CREATE TABLE pytake_automation (
    automation_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    flow_id          uuid NOT NULL REFERENCES pytake_flow (flow_id) ON DELETE CASCADE,
    -- The caller's `config` object, kept as given (the runner reads `phone_number_id`).
    config           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    -- created → running (start, once) → completed (every job done or failed)
    status           text NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'running', 'completed')),
    created_by       uuid REFERENCES app_user (user_id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pytake_automation_org_idx ON pytake_automation (organization_id, created_at DESC);
CREATE TRIGGER pytake_automation_updated_at BEFORE UPDATE ON pytake_automation FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

-- One contact's run of the flow. `next_node` is the next node to execute and `state` what
-- earlier nodes produced (AI replies); both are written after every node, so a job claimed
-- again resumes after the last node it finished. `lease_token` fences the claim: a runner
-- whose lease ended cannot write any more.
CREATE TABLE pytake_automation_job (
    job_id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    automation_id    uuid NOT NULL REFERENCES pytake_automation (automation_id) ON DELETE CASCADE,
    organization_id  uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    contact_id       uuid NOT NULL REFERENCES pytake_contact (contact_id) ON DELETE CASCADE,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    next_node        text,
    state            jsonb NOT NULL DEFAULT '{}',
    steps            integer NOT NULL DEFAULT 0 CHECK (steps >= 0),
    messages_sent    integer NOT NULL DEFAULT 0 CHECK (messages_sent >= 0),
    ai_calls         integer NOT NULL DEFAULT 0 CHECK (ai_calls >= 0),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_token      uuid,
    lease_until      timestamptz,
    error            text,
    started_at       timestamptz,
    finished_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pytake_automation_job_contact_key UNIQUE (automation_id, contact_id)
);
-- claiming: pending or running (lease check) jobs, oldest first
CREATE INDEX pytake_automation_job_claim_idx ON pytake_automation_job (status, created_at)
    WHERE status IN ('pending', 'running');
CREATE TRIGGER pytake_automation_job_updated_at BEFORE UPDATE ON pytake_automation_job FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();
