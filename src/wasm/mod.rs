//! The proxy-wasm binding, and nothing else: the ABI calls as values (`abi`) and the SDK's
//! contexts forwarding to the runtime (`bindings`).

mod abi;
mod bindings;
