//! What the shell needs from the proxy. Header and response calls act on the "effective"
//! HTTP context, which the root context switches to resume a paused request.

pub trait Host {
    /// Milliseconds since the Unix epoch, from the proxy's clock.
    fn now_ms(&self) -> u64;
    /// A random number (for backoff jitter and lease owner ids); need not be cryptographic.
    fn random(&mut self) -> u64;
    /// Starts `GET authority+path` on `cluster`; returns the call's token.
    fn dispatch_get(&mut self, cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> Result<u32, String>;
    /// Shared data, visible to every VM of this plugin in the process: the value and its CAS.
    fn get_shared(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Writes shared data if `cas` still matches (always, for `None`); false on a mismatch.
    fn set_shared(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
    /// Makes `context_id` the HTTP context later calls act on. False if it no longer exists.
    fn set_effective_context(&mut self, context_id: u32) -> bool;
    /// All request headers (pseudo-headers included) in proxy-wasm's serialized map format,
    /// read with `header_map::parse`.
    fn request_header_map(&self) -> Vec<u8>;
    fn remove_request_header(&mut self, name: &str);
    fn set_request_header(&mut self, name: &str, value: &str);
    fn send_response(&mut self, status: u32, headers: &[(String, String)], body: &[u8]);
    fn resume_request(&mut self);
    /// Defines a counter (or gauge) visible in the proxy's stats; `None` if the host refuses.
    fn define_metric(&mut self, gauge: bool, name: &str) -> Option<u32>;
    fn increment_metric(&mut self, id: u32, by: u64);
    fn record_metric(&mut self, id: u32, value: u64);
}
