//! Anthropic's Messages API inbound (`POST /v1/messages`): a client's request turned into the
//! canonical OpenAI chat request, and the canonical answer (whole or streamed) turned back
//! into Anthropic's shapes (STUB: being written).
