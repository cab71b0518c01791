-- PyTake (issue 15): platform administrators and PyTake's refresh-token families.

-- PyTake's `super_admin` acts in any organization (`X-Organization-Id`); it is a property of
-- the person, not of one membership, so it is a flag on the user. Their memberships keep their
-- own roles.
ALTER TABLE app_user ADD COLUMN super_admin boolean NOT NULL DEFAULT false;

-- PyTake's refresh tokens (JWTs with audience "pytake"), stored as SHA-256 of the token text.
-- Rotation with grace: a token stays usable, even after it was exchanged, until one of its
-- successors (`parent_id` = its id) is first used; then it is `spent_at`, and presenting a
-- spent token revokes the whole family (one login).
CREATE TABLE pytake_refresh_token (
    pytake_refresh_token_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id        uuid NOT NULL,
    parent_id        uuid REFERENCES pytake_refresh_token (pytake_refresh_token_id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES app_user (user_id) ON DELETE CASCADE,
    organization_id  uuid NOT NULL REFERENCES organization (organization_id) ON DELETE CASCADE,
    token_hash       bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    expires_at       timestamptz NOT NULL,
    -- first exchange of this token
    used_at          timestamptz,
    -- a successor was used: presenting this token again is reuse
    spent_at         timestamptz,
    revoked_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pytake_refresh_token_family_idx ON pytake_refresh_token (family_id);
CREATE INDEX pytake_refresh_token_parent_idx ON pytake_refresh_token (parent_id);
CREATE INDEX pytake_refresh_token_user_idx ON pytake_refresh_token (user_id);
