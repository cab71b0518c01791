-- Issue 16: providers of other dialects report the parts of their token counts. Each usage
-- event keeps them: cached_tokens (of prompt_tokens, read from the provider's prompt cache),
-- cache_write_tokens (of prompt_tokens, written to it: Anthropic's cache writes) and
-- reasoning_tokens (of completion_tokens). The cost already prices them (cached and write
-- prices on the model); these columns say why a cost is what it is.
ALTER TABLE usage_event
    ADD COLUMN cached_tokens int8 NOT NULL DEFAULT 0,
    ADD COLUMN cache_write_tokens int8 NOT NULL DEFAULT 0,
    ADD COLUMN reasoning_tokens int8 NOT NULL DEFAULT 0;
