//! Binding of the shell to the proxy-wasm ABI. Nothing here decides anything: each callback
//! forwards to `Plugin` with a `Host` made of proxy-wasm calls.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use log::{error, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as WasmAction, ContextType, LogLevel, MapType, MetricType};

use super::host::Host;
use super::plugin::{Action, Plugin};
use crate::config::Config;

/// How often the root context wakes to start refreshes and enforce deadlines.
const TICK: Duration = Duration::from_millis(200);

proxy_wasm::main! {{
    // Until configured, log everything; on_configure lowers this to the host's level so
    // requests do not format debug lines Envoy would drop.
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { plugin: None }) });
}}

struct ProxyHost;

#[link(wasm_import_module = "env")]
extern "C" {
    /// The raw ABI call behind the SDK's `get_map_bytes`, so the map can be parsed without
    /// copying every header into owned strings.
    fn proxy_get_header_map_pairs(map_type: u32, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Host for ProxyHost {
    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// splitmix64 over the clock's nanoseconds and a counter: enough to spread retries and
    /// tell VMs apart, which is all it is used for.
    fn random(&mut self) -> u64 {
        let nanos = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        let mut z = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn get_shared(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set_shared(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }

    fn dispatch_get(&mut self, cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> Result<u32, String> {
        let headers =
            vec![(":method", "GET"), (":path", path), (":authority", authority), ("accept", "application/json")];
        hostcalls::dispatch_http_call(cluster, headers, None, vec![], Duration::from_millis(timeout_ms))
            .map_err(|s| format!("{s:?}"))
    }

    fn set_effective_context(&mut self, context_id: u32) -> bool {
        hostcalls::set_effective_context(context_id).is_ok()
    }

    fn request_header_map(&self) -> Vec<u8> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: the host writes a buffer it allocated through this module's
        // proxy_on_memory_allocate (the global allocator), of `size` bytes, and hands
        // ownership to us; an empty map leaves `data` null.
        unsafe {
            if proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size) != 0
                || data.is_null()
            {
                return Vec::new();
            }
            Vec::from_raw_parts(data, size, size)
        }
    }

    fn remove_request_header(&mut self, name: &str) {
        let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, None);
    }

    fn set_request_header(&mut self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(value.as_bytes()));
    }

    fn send_response(&mut self, status: u32, headers: &[(String, String)], body: &[u8]) {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let _ = hostcalls::send_http_response(status, h, Some(body));
    }

    fn resume_request(&mut self) {
        let _ = hostcalls::resume_http_request();
    }

    fn define_metric(&mut self, gauge: bool, name: &str) -> Option<u32> {
        let kind = if gauge { MetricType::Gauge } else { MetricType::Counter };
        hostcalls::define_metric(kind, name).ok()
    }

    fn increment_metric(&mut self, id: u32, by: u64) {
        let _ = hostcalls::increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX));
    }

    fn record_metric(&mut self, id: u32, value: u64) {
        let _ = hostcalls::record_metric(id, value);
    }
}

struct Root {
    plugin: Option<Rc<RefCell<Plugin>>>,
}

impl Context for Root {
    fn on_done(&mut self) -> bool {
        // Going away mid-fetch: hand the lease back so another VM fetches at once.
        if let Some(plugin) = &self.plugin {
            if let Ok(mut p) = plugin.try_borrow_mut() {
                p.on_shutdown(&mut ProxyHost);
            }
        }
        true
    }

    fn on_http_call_response(&mut self, token_id: u32, _: usize, body_size: usize, _: usize) {
        let Some(plugin) = &self.plugin else { return };
        let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|v| std::str::from_utf8(&v).ok().and_then(|s| s.parse::<u32>().ok()));
        let cap = crate::jwks_cache::MAX_JWKS_BYTES + 1;
        let body = hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpCallResponseBody, 0, body_size.min(cap))
            .ok()
            .flatten();
        let body = if body_size > cap - 1 { Some(vec![0u8; cap]) } else { body };
        match plugin.try_borrow_mut() {
            Ok(mut p) => p.on_fetch_response(&mut ProxyHost, token_id, status, body),
            Err(_) => warn!("jwt-guard: fetch response arrived re-entrantly; dropped"),
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        if let Ok(level) = hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        let bytes = hostcalls::get_buffer(proxy_wasm::types::BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let config = match Config::parse(&bytes) {
            Ok(c) => c,
            Err(e) => {
                error!("{e}");
                return false;
            }
        };
        let mut host = ProxyHost;
        let owner = host.random();
        let mut plugin = Plugin::new(config, host.now_ms(), owner);
        plugin.define_metrics(&mut host);
        let plugin = Rc::new(RefCell::new(plugin));
        self.plugin = Some(plugin);
        // The first tick (within TICK) starts the fetch. Not here: Envoy also configures a
        // short-lived base VM that is destroyed at once, and a fetch it started would hold
        // the shared lease while nobody could receive the answer.
        let _ = hostcalls::set_tick_period(TICK);
        true
    }

    fn on_tick(&mut self) {
        if let Some(plugin) = &self.plugin {
            if let Ok(mut p) = plugin.try_borrow_mut() {
                p.on_tick(&mut ProxyHost);
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http { id: context_id, plugin: self.plugin.clone() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    id: u32,
    plugin: Option<Rc<RefCell<Plugin>>>,
}

impl Context for Http {
    fn on_done(&mut self) -> bool {
        if let Some(plugin) = &self.plugin {
            if let Ok(mut p) = plugin.try_borrow_mut() {
                p.on_done(self.id);
            }
        }
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> WasmAction {
        let mut host = ProxyHost;
        let action = match &self.plugin {
            Some(plugin) => match plugin.try_borrow_mut() {
                Ok(mut p) => p.on_request(&mut host, self.id),
                Err(_) => {
                    host.send_response(503, &[], b"");
                    Action::Pause
                }
            },
            // Not configured: never let a request through unchecked.
            None => {
                host.send_response(503, &[], b"");
                Action::Pause
            }
        };
        match action {
            Action::Continue => WasmAction::Continue,
            Action::Pause => WasmAction::Pause,
        }
    }
}
