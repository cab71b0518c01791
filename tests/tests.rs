//! Integration tests: the real `catraca` binary against the mock upstream over loopback.

// helpers outside #[test] functions unwrap too: a failed assumption is a failed test
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod accounting;
mod anthropic_inbound;

mod bradax;
mod bradax_graphs;
mod bradax_llm;
mod bradax_sdk;
mod bradax_vectors;
mod cli;
mod config_cli;
mod contract;
mod counting;
mod db;
mod dialect_anthropic;
mod dialect_azure;
mod dialect_bedrock;
mod dialect_gemini;
mod errors;
mod failover;
mod faults;
mod funds;
mod hostile;
mod limits;
mod live;
mod mail;
mod maxai;
mod openai_surface;
mod openapi;
mod operator;
mod pix;
mod proxy;
mod pytake;
mod pytake_automations;
mod pytake_content;
mod pytake_contract;
mod pytake_secrets;
mod pytake_whatsapp;
mod rbac_walk;
mod reload;
mod sabia;
mod sdk;
mod secrets;
mod tokia;
mod tokia_account;
mod tokia_admin;
mod tokia_alerts;
mod tokia_health;
mod tokia_models;
mod tokia_prompts;
mod tokia_refunds;
mod tokia_sessions;
mod tokia_tenants;
mod tokia_totals;
mod vault;
