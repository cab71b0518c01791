//! The domain core: every rule about accounts, organizations, keys, usage, money, templates
//! and audit, with typed inputs and outputs and one error ([`DomainError`]). No axum, no
//! contract names, no SQL: statements are in `crate::store`, and each contract surface
//! (`crate::surfaces`) only parses its shapes, calls in here and renders the result.

pub mod account;
pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod automations;
pub mod bradax;
pub mod contacts;
pub mod error;
pub mod flows;
pub mod graphs;
pub mod incidents;
pub mod inference;
pub mod keys;
pub mod ledger;
pub mod models;
pub mod money;
pub mod orgs;
pub mod outbound;
pub mod pix;
pub mod plans;
pub mod preferences;
pub mod prompts;
pub mod pytake;
pub mod referrals;
pub mod refresh;
pub mod refunds;
pub mod roles;
pub mod sessions;
pub mod templates;
pub mod upstream_health;
pub mod usage;
pub mod vault;
pub mod vectors;
pub mod webhooks;
pub mod whatsapp;

pub use error::{Conflict, DomainError, Entity, Unauthorized};
