//! Every SQL statement, as named functions returning named rows: the pool and migrations
//! ([`pg`]), the gateway's in-memory view of API keys ([`key_cache`]), the ledger, the model
//! catalog, and what the domain core reads and writes (accounts, keys, usage, templates,
//! models, audit). The request path never waits on Postgres for a key it has seen.

pub mod account;
pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod automations;
pub mod bradax;
pub mod catalog;
pub mod contacts;
pub mod flows;
pub mod funds;
pub mod graphs;
pub mod incidents;
pub mod key_cache;
pub mod keys;
pub mod ledger;
pub mod models;
pub mod orgs;
pub mod outbox;
pub mod pg;
pub mod pix;
pub mod plans;
pub mod prompts;
pub mod pytake_auth;
pub mod rate_usage;
pub mod refresh_tokens;
pub mod refunds;
pub mod sessions;
pub mod templates;
pub mod upstream_health;
pub mod usage;
pub mod usage_events;
pub mod vault;
pub mod vectors;
pub mod webhooks;
pub mod whatsapp;
