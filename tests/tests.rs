//! Integration tests: the real `catraca` binary against the mock upstream over loopback.

mod common;

mod config_cli;
mod errors;
mod failover;
mod proxy;
mod reload;
mod sdk;
