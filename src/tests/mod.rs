//! Unit tests of each stage's behaviour through its public API, one file (or folder) per
//! stage of `src/`. Tests of a file's private helpers stay in that file.

mod authn;
mod claims;
mod conditions;
mod crypto;
mod decision;
mod deny;
mod extractor;
mod identity;
mod introspection;
mod issuers;
mod jwks;
mod policy;
mod refresh;
mod rule_actions;
mod runtime;
mod sender;
mod token;
