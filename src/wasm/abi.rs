//! The proxy-wasm calls jwt-guard makes, declared here so that each returns the host's status
//! as a value. The SDK's `hostcalls` panic on any status they do not expect (a fetch that broke
//! off makes Envoy answer `get_buffer` with BadArgument), and a panic aborts the VM for every
//! request on that worker. The one call left to the SDK is `dispatch_http_call` (in
//! `bindings`): it must register the call with the SDK's dispatcher, which delivers the
//! answer, and Envoy's httpCall returns only the statuses the SDK expects (Ok, BadArgument,
//! InternalFailure).

use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::refresh::introspection_call::USER_AGENT;
use crate::runtime::header_map;
use crate::runtime::host::{Host, HostResult, HostStatus};
use crate::token::protobuf;

const MAP_REQUEST_HEADERS: u32 = 0;
const MAP_RESPONSE_HEADERS: u32 = 2;
const MAP_CALL_RESPONSE_HEADERS: u32 = 6;
const BUFFER_CALL_RESPONSE_BODY: u32 = 4;
const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
const STREAM_HTTP_REQUEST: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
    fn proxy_get_log_level(level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(kind: u32, start: usize, max: usize, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_property(path: *const u8, path_size: usize, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(map: u32, key: *const u8, key_size: usize, value: *const u8, size: usize) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_size: usize) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(key: *const u8, key_size: usize, value: *const u8, size: usize, cas: u32) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_continue_stream(stream: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
    fn proxy_get_status(code: *mut u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_set_property(path: *const u8, path_size: usize, value: *const u8, value_size: usize) -> u32;
    fn proxy_call_foreign_function(
        name: *const u8,
        name_size: usize,
        arguments: *const u8,
        arguments_size: usize,
        results: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
}

fn check(status: u32) -> HostResult<()> {
    if status == 0 {
        Ok(())
    } else {
        Err(HostStatus(status))
    }
}

/// Takes ownership of a buffer the host returned. SAFETY (for callers): the host allocated
/// `size` bytes at `data` through this module's `proxy_on_memory_allocate` (the global
/// allocator) and hands them over; a null `data` means no bytes.
unsafe fn owned(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

pub fn log(level: log::Level, message: &str) {
    let level = match level {
        log::Level::Trace => 0,
        log::Level::Debug => 1,
        log::Level::Info => 2,
        log::Level::Warn => 3,
        log::Level::Error => 4,
    };
    // SAFETY: a valid pointer and length into `message`, read during the call only.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

/// Envoy's log level for this plugin, as a filter for the `log` crate.
pub fn log_level() -> HostResult<log::LevelFilter> {
    let mut level = 0;
    // SAFETY: the host writes one u32.
    check(unsafe { proxy_get_log_level(&mut level) })?;
    Ok(match level {
        0 => log::LevelFilter::Trace,
        1 => log::LevelFilter::Debug,
        2 => log::LevelFilter::Info,
        3 => log::LevelFilter::Warn,
        4 => log::LevelFilter::Error,
        _ => log::LevelFilter::Off,
    })
}

pub fn set_tick_period(ms: u64) -> HostResult<()> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_tick_period_milliseconds(u32::try_from(ms).unwrap_or(u32::MAX)) })
}

fn buffer(kind: u32, max: usize) -> HostResult<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: the host writes a pointer and a size, and hands the buffer over (see `owned`).
    unsafe {
        check(proxy_get_buffer_bytes(kind, 0, max, &mut data, &mut size))?;
        Ok(owned(data, size))
    }
}

pub fn plugin_configuration() -> HostResult<Vec<u8>> {
    buffer(BUFFER_PLUGIN_CONFIGURATION, usize::MAX)
}

/// The `log` crate's logger, writing through `proxy_log` and never failing: the SDK's own
/// logger unwraps the host's status.
struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            log(record.level(), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the logger (everything logged until `on_configure` reads the host's level) and a
/// panic hook that reports a panic at critical level before the VM aborts.
pub fn install_logger() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        // SAFETY: as in `log`; 5 is critical.
        let _ = unsafe { proxy_log(5, message.as_ptr(), message.len()) };
    }));
}

/// Envoy's `DeclarePropertyArguments` (source/extensions/common/wasm/ext/declare_property.proto):
/// `name` (1), `type` (3) String = 1, `span` (5) DownstreamRequest = 1.
fn declare_property_arguments(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 8);
    protobuf::bytes_field(&mut out, 1, name.as_bytes());
    protobuf::varint_field(&mut out, 3, 1);
    protobuf::varint_field(&mut out, 5, 1);
    out
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The proxy as the plugin's `Host`.
pub struct ProxyHost;

impl Host for ProxyHost {
    fn set_tick_period(&mut self, ms: u64) -> HostResult<()> {
        set_tick_period(ms)
    }

    fn now_ms(&self) -> HostResult<u64> {
        let mut nanos = 0u64;
        // SAFETY: the host writes one u64.
        check(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
        Ok(nanos / 1_000_000)
    }

    /// splitmix64 over the clock's nanoseconds and a counter: enough to spread retries and
    /// tell VMs apart, which is all it is used for.
    fn random(&mut self) -> u64 {
        let mut nanos = 0u64;
        // SAFETY: the host writes one u64; on failure it stays 0 and the counter still varies.
        let _ = unsafe { proxy_get_current_time_nanoseconds(&mut nanos) };
        let mut z = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn secure_random(&mut self, out: &mut [u8]) -> HostResult<()> {
        // WASI's random_get, which Envoy serves from its own secure source.
        getrandom::getrandom(out).map_err(|_| HostStatus::INTERNAL_FAILURE)
    }

    fn dispatch_get(&mut self, cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> HostResult<u32> {
        let headers = vec![
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            ("accept", "application/json"),
            ("user-agent", USER_AGENT),
        ];
        dispatch_http_call(cluster, headers, None, Duration::from_millis(timeout_ms))
    }

    fn dispatch(&mut self, cluster: &str, headers: &[(&str, &str)], body: &[u8], timeout_ms: u64) -> HostResult<u32> {
        dispatch_http_call(cluster, headers.to_vec(), Some(body), Duration::from_millis(timeout_ms))
    }

    fn call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        let (mut data, mut size) = (null_mut(), 0);
        // SAFETY: `name` is read during the call; the value is handed over (see `owned`).
        unsafe {
            match proxy_get_header_map_value(MAP_CALL_RESPONSE_HEADERS, name.as_ptr(), name.len(), &mut data, &mut size)
            {
                0 => Ok(Some(owned(data, size))),
                1 => Ok(None),
                s => Err(HostStatus(s)),
            }
        }
    }

    fn call_response_body(&self, max: usize) -> HostResult<Vec<u8>> {
        buffer(BUFFER_CALL_RESPONSE_BODY, max)
    }

    fn call_status(&self) -> HostResult<(u32, String)> {
        let (mut code, mut data, mut size) = (0u32, null_mut(), 0);
        // SAFETY: the host writes the code and hands the message over (see `owned`).
        unsafe {
            check(proxy_get_status(&mut code, &mut data, &mut size))?;
            Ok((code, String::from_utf8_lossy(&owned(data, size)).into_owned()))
        }
    }

    fn get_shared(&self, key: &str) -> HostResult<(Option<Vec<u8>>, Option<u32>)> {
        let (mut data, mut size, mut cas) = (null_mut(), 0, 0u32);
        // SAFETY: `key` is read during the call; the value is handed over (see `owned`).
        unsafe {
            match proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) {
                0 => Ok((if data.is_null() { None } else { Some(owned(data, size)) }, (cas != 0).then_some(cas))),
                1 => Ok((None, None)),
                s => Err(HostStatus(s)),
            }
        }
    }

    fn set_shared(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> HostResult<()> {
        // SAFETY: both slices are read during the call only.
        check(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas.unwrap_or(0)) })
    }

    fn set_effective_context(&mut self, context_id: u32) -> HostResult<()> {
        // SAFETY: no pointers.
        check(unsafe { proxy_set_effective_context(context_id) })
    }

    fn request_header_map(&self) -> HostResult<Vec<u8>> {
        let (mut data, mut size) = (null_mut(), 0);
        // SAFETY: the host writes a pointer and a size, and hands the buffer over (see `owned`).
        unsafe {
            check(proxy_get_header_map_pairs(MAP_REQUEST_HEADERS, &mut data, &mut size))?;
            Ok(owned(data, size))
        }
    }

    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>> {
        // The ABI's property path: the parts joined with NUL bytes.
        let joined = path.join("\0");
        let (mut data, mut size) = (null_mut(), 0);
        // SAFETY: `joined` is read during the call; the host writes a pointer and a size and
        // hands the buffer over (see `owned`).
        match unsafe { proxy_get_property(joined.as_ptr(), joined.len(), &mut data, &mut size) } {
            0 => Ok(Some(unsafe { owned(data, size) })),
            1 => Ok(None),
            status => Err(HostStatus(status)),
        }
    }

    fn set_property(&mut self, name: &str, value: &str) -> HostResult<()> {
        // SAFETY: both strings are read during the call only.
        check(unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
    }

    fn declare_string_property(&mut self, name: &str) -> HostResult<()> {
        let args = declare_property_arguments(name);
        let function = "declare_property";
        let (mut data, mut size) = (null_mut(), 0);
        // SAFETY: both slices are read during the call; a result buffer, if any, is handed over.
        unsafe {
            check(proxy_call_foreign_function(
                function.as_ptr(),
                function.len(),
                args.as_ptr(),
                args.len(),
                &mut data,
                &mut size,
            ))?;
            drop(owned(data, size));
        }
        Ok(())
    }

    fn remove_request_header(&mut self, name: &str) -> HostResult<()> {
        // SAFETY: `name` is read during the call only.
        check(unsafe { proxy_remove_header_map_value(MAP_REQUEST_HEADERS, name.as_ptr(), name.len()) })
    }

    fn set_request_header(&mut self, name: &str, value: &str) -> HostResult<()> {
        // SAFETY: both strings are read during the call only.
        check(unsafe {
            proxy_replace_header_map_value(MAP_REQUEST_HEADERS, name.as_ptr(), name.len(), value.as_ptr(), value.len())
        })
    }

    fn set_response_header(&mut self, name: &str, value: &str) -> HostResult<()> {
        // SAFETY: both strings are read during the call only.
        check(unsafe {
            proxy_replace_header_map_value(MAP_RESPONSE_HEADERS, name.as_ptr(), name.len(), value.as_ptr(), value.len())
        })
    }

    fn send_response(
        &mut self,
        status: u32,
        grpc_status: Option<u32>,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HostResult<()> {
        let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        let map = header_map::serialize(&pairs);
        // -1: not gRPC (or let Envoy derive grpc-status from the HTTP status).
        let grpc = grpc_status.and_then(|g| i32::try_from(g).ok()).unwrap_or(-1);
        // SAFETY: every slice is read during the call only.
        check(unsafe {
            proxy_send_local_response(status, null(), 0, body.as_ptr(), body.len(), map.as_ptr(), map.len(), grpc)
        })
    }

    fn resume_request(&mut self) -> HostResult<()> {
        // SAFETY: no pointers.
        check(unsafe { proxy_continue_stream(STREAM_HTTP_REQUEST) })
    }

    fn define_metric(&mut self, gauge: bool, name: &str) -> HostResult<u32> {
        let mut id = 0;
        // SAFETY: `name` is read during the call; the host writes one u32. 0 counter, 1 gauge.
        check(unsafe { proxy_define_metric(u32::from(gauge), name.as_ptr(), name.len(), &mut id) })?;
        Ok(id)
    }

    fn increment_metric(&mut self, id: u32, by: u64) -> HostResult<()> {
        // SAFETY: no pointers.
        check(unsafe { proxy_increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX)) })
    }

    fn record_metric(&mut self, id: u32, value: u64) -> HostResult<()> {
        // SAFETY: no pointers.
        check(unsafe { proxy_record_metric(id, value) })
    }
}

/// The SDK's `dispatch_http_call`, which registers the call with its dispatcher (see the top).
fn dispatch_http_call(
    cluster: &str,
    headers: Vec<(&str, &str)>,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32, crate::runtime::host::HostStatus> {
    proxy_wasm::hostcalls::dispatch_http_call(cluster, headers, body, vec![], timeout)
        .map_err(|s| crate::runtime::host::HostStatus(s as u32))
}
