-- The client's own request id (`x-client-request-id`, else its `x-request-id`), kept beside the
-- gateway's `request_id` so a platform can find a request by the id its client logged.
ALTER TABLE usage_event ADD COLUMN client_request_id text;
