//! PostgreSQL: the pool and migrations ([`pg`]) and the gateway's in-memory view of API keys
//! ([`key_cache`]). The request path never waits on Postgres for a key it has seen.

pub mod catalog;
pub mod key_cache;
pub mod ledger;
pub mod pg;
