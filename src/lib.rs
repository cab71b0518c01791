//! catraca: an AI API gateway on Pingora.
//!
//! # Layout
//! A request enters through Pingora at [`gateway::Gateway`] (`gateway/mod.rs`, one method per
//! proxy phase) and walks:
//! 1. [`gateway::request`]: route, key auth ([`gateway::route::KeyStore`]), body read, model →
//!    ordered deployments ([`gateway::route::Live::candidates`]);
//! 2. [`gateway::upstream`]: peer, provider credentials, `model` rewrite, `include_usage`;
//! 3. [`gateway::stream`] and [`sse`]: failover on 429/5xx, bytes through, usage scan;
//! 4. [`gateway::logging`]: one [`usage::UsageEvent`] per request to a [`usage::UsageSink`].
//!
//! Around it: [`config`] (YAML → validated [`config::Config`] → hot reload), [`state`] (the
//! one swappable [`gateway::route::Live`]), [`metrics`], [`error`] (the error catalogue),
//! [`server`] (process assembly) and [`mock_upstream`] (the fake provider).
//!
//! The management side, served by [`admin`] beside the gateway: [`domain`] (the core: every
//! rule on accounts, roles, organizations, plans, keys, ledger, usage, money, webhooks,
//! templates and audit, with one [`domain::DomainError`]), [`store`] (every SQL statement,
//! named functions over named rows) and [`surfaces`] (one per contract, `maxai`, `sabia`,
//! `operator`: parse its shapes, call the domain, render its shapes; no SQL). Beside it,
//! [`mail`] sends the queued mails (`outbox_email`) over SMTP, and [`live`] follows the events
//! MaxAI's `/socket.io/` pushes to customers.

pub mod admin;
pub mod cli;
pub mod config;
pub mod dialect;
pub mod domain;
pub mod error;
pub mod funds;
pub mod gateway;
pub mod limits;
pub mod live;
pub mod mail;
pub mod metrics;
pub mod mock_upstream;
pub mod pricing;
pub mod secrets;
pub mod server;
pub mod sse;
pub mod state;
pub mod store;
pub mod surfaces;
pub mod tokens;
pub mod usage;
