//! The token itself: strict JWS parsing, base64url, the JSON rules, log-safe summaries.

pub mod base64url;
mod jws;
pub mod percent;
pub mod protobuf;
pub mod vocabulary;

pub use jws::{
    fingerprint, json_depth, parse, parse_claims, parse_header, shape, summarize, Claims, Header, Jwt, Shape, Summary,
    MAX_JSON_DEPTH,
};
