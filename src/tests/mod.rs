mod authenticator;
mod config;
mod engine;
mod extractor;
mod jwks;
mod jwks_cache;
mod plugin;
mod token;
