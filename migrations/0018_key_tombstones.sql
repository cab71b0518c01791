-- A deleted key stays as a revoked tombstone (hidden from every list, refused everywhere), so
-- the usage it made keeps showing which key it was.
ALTER TABLE api_key ADD COLUMN deleted_at timestamptz;
