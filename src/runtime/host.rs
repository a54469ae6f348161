//! What the plugin needs from the proxy. Every call returns the host's status as a value: a
//! proxy that answers a call with anything but Ok (a fetch that broke off, a context that is
//! gone, a refused header edit) is something the plugin decides about, never a panic. Header
//! and response calls act on the "effective" HTTP context, which the root context switches to
//! resume a paused request.

/// A proxy-wasm status other than Ok, as the host returned it (ABI 0.2.1 numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStatus(pub u32);

impl HostStatus {
    pub const NOT_FOUND: HostStatus = HostStatus(1);
    pub const BAD_ARGUMENT: HostStatus = HostStatus(2);
    pub const CAS_MISMATCH: HostStatus = HostStatus(8);
    pub const INTERNAL_FAILURE: HostStatus = HostStatus(10);

    /// Every non-Ok status the ABI defines, for tests that try each one.
    pub const ALL: [HostStatus; 12] = [
        HostStatus(1),
        HostStatus(2),
        HostStatus(3),
        HostStatus(4),
        HostStatus(5),
        HostStatus(6),
        HostStatus(7),
        HostStatus(8),
        HostStatus(9),
        HostStatus(10),
        HostStatus(11),
        HostStatus(12),
    ];

    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "NotFound",
            2 => "BadArgument",
            3 => "SerializationFailure",
            4 => "ParseFailure",
            5 => "BadExpression",
            6 => "InvalidMemoryAccess",
            7 => "Empty",
            8 => "CasMismatch",
            9 => "ResultMismatch",
            10 => "InternalFailure",
            11 => "BrokenConnection",
            12 => "Unimplemented",
            _ => "unknown status",
        }
    }
}

impl std::fmt::Display for HostStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

pub type HostResult<T> = Result<T, HostStatus>;

pub trait Host {
    /// Milliseconds since the Unix epoch, from the proxy's clock.
    fn now_ms(&self) -> HostResult<u64>;
    /// How often the root context's tick comes, from now on.
    fn set_tick_period(&mut self, ms: u64) -> HostResult<()>;
    /// A random number (for backoff jitter and lease owner ids); need not be cryptographic.
    fn random(&mut self) -> u64;
    /// Fills `out` from a cryptographically secure source (WASI `random_get`), for secrets.
    fn secure_random(&mut self, out: &mut [u8]) -> HostResult<()>;
    /// Starts `GET authority+path` on `cluster`; returns the call's token.
    fn dispatch_get(&mut self, cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> HostResult<u32>;
    /// Starts a call with these headers (pseudo-headers included) and body on `cluster`;
    /// returns the call's token. Its answer arrives as a fetch's does.
    fn dispatch(&mut self, cluster: &str, headers: &[(&str, &str)], body: &[u8], timeout_ms: u64) -> HostResult<u32>;
    /// While a fetch's answer is being delivered: one response header (`:status`, say).
    fn call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>>;
    /// While a fetch's answer is being delivered: the first `max` bytes of its body.
    fn call_response_body(&self, max: usize) -> HostResult<Vec<u8>>;
    /// The proxy's status for the call being delivered (Envoy: 11 "reset" when it failed).
    fn call_status(&self) -> HostResult<(u32, String)>;
    /// Shared data, visible to every VM of this plugin in the process: the value and its CAS.
    /// A key that does not exist is `Ok((None, None))`.
    fn get_shared(&self, key: &str) -> HostResult<(Option<Vec<u8>>, Option<u32>)>;
    /// Writes shared data if `cas` still matches (always, for `None`); `CAS_MISMATCH` if not.
    fn set_shared(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> HostResult<()>;
    /// Makes `context_id` the HTTP context later calls act on; fails if it no longer exists.
    fn set_effective_context(&mut self, context_id: u32) -> HostResult<()>;
    /// All request headers (pseudo-headers included) in proxy-wasm's serialized map format,
    /// read with `header_map::parse`.
    fn request_header_map(&self) -> HostResult<Vec<u8>>;
    /// A property of the current stream (`["connection", "sha256_peer_certificate_digest"]`);
    /// `Ok(None)` when the host has none (no client certificate, say).
    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>>;
    /// Sets a filter-state property of the current stream (Envoy: under `wasm.`).
    fn set_property(&mut self, name: &str, value: &str) -> HostResult<()>;
    /// Declares a filter-state property as a string (Envoy's `declare_property` foreign
    /// function), from the root context, once per VM.
    fn declare_string_property(&mut self, name: &str) -> HostResult<()>;
    fn remove_request_header(&mut self, name: &str) -> HostResult<()>;
    fn set_request_header(&mut self, name: &str, value: &str) -> HostResult<()>;
    /// Sets a header of the response to the client (from its response-headers callback).
    fn set_response_header(&mut self, name: &str, value: &str) -> HostResult<()>;
    /// A local reply; `grpc_status` Some for a gRPC request (the body is then its message).
    fn send_response(
        &mut self,
        status: u32,
        grpc_status: Option<u32>,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HostResult<()>;
    fn resume_request(&mut self) -> HostResult<()>;
    /// Defines a counter (or gauge) visible in the proxy's stats.
    fn define_metric(&mut self, gauge: bool, name: &str) -> HostResult<u32>;
    fn increment_metric(&mut self, id: u32, by: u64) -> HostResult<()>;
    fn record_metric(&mut self, id: u32, value: u64) -> HostResult<()>;
}
