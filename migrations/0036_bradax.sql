-- bradax (issue 15): projects are organizations of kind 'project' with a tier; their keys
-- (`bx_live_…`) are ordinary api_key rows whose `scopes` hold bradax's scope names. Refresh
-- tokens of every contract that rotates them (PyTake's users, bradax's keys) share one table
-- and one rule: rotation with grace, reuse of a spent token revokes the family.

-- 'full' or 'student' for projects; NULL for every other kind of organization.
ALTER TABLE organization ADD COLUMN tier text
    CHECK (tier IS NULL OR tier IN ('full', 'student'));
ALTER TABLE organization ADD CONSTRAINT organization_tier_only_projects
    CHECK (tier IS NULL OR kind = 'project');

-- PyTake's refresh-token families become everyone's: `audience` names the contract, and a
-- family belongs to a user (PyTake) or to an API key (bradax: the token of a key dies with it).
ALTER TABLE pytake_refresh_token RENAME TO rotating_refresh_token;
ALTER TABLE rotating_refresh_token RENAME COLUMN pytake_refresh_token_id TO rotating_refresh_token_id;
ALTER INDEX pytake_refresh_token_family_idx RENAME TO rotating_refresh_token_family_idx;
ALTER INDEX pytake_refresh_token_parent_idx RENAME TO rotating_refresh_token_parent_idx;
ALTER INDEX pytake_refresh_token_user_idx RENAME TO rotating_refresh_token_user_idx;
ALTER TABLE rotating_refresh_token ADD COLUMN audience text NOT NULL DEFAULT 'pytake'
    CHECK (audience IN ('pytake', 'bradax'));
ALTER TABLE rotating_refresh_token ALTER COLUMN audience DROP DEFAULT;
ALTER TABLE rotating_refresh_token ADD COLUMN api_key_id uuid REFERENCES api_key (api_key_id) ON DELETE CASCADE;
ALTER TABLE rotating_refresh_token ALTER COLUMN user_id DROP NOT NULL;
-- bradax: the scopes this family was granted (a subset of the key's at the time)
ALTER TABLE rotating_refresh_token ADD COLUMN scopes text[] NOT NULL DEFAULT '{}';
ALTER TABLE rotating_refresh_token ADD CONSTRAINT rotating_refresh_token_owner
    CHECK ((audience = 'pytake' AND user_id IS NOT NULL AND api_key_id IS NULL)
        OR (audience = 'bradax' AND api_key_id IS NOT NULL AND user_id IS NULL));
CREATE INDEX rotating_refresh_token_api_key_idx ON rotating_refresh_token (api_key_id) WHERE api_key_id IS NOT NULL;
