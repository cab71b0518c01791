//! Configuration: the YAML file ([`raw`]), its validation into typed values ([`resolve`]) and
//! the hot reload of routing ([`reload`]).

pub mod current;
pub mod deprecation;
pub mod raw;
pub mod reload;
pub mod resolve;

pub use resolve::{
    Category, ClientConfig, Config, ConfigError, DatabaseConfig, Deployment, FailoverConfig,
    KeyEntry, Model, ModelsList, Provider, UsageConfig, load_file, parse_str,
};
