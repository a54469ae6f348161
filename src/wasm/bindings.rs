//! Binding of the plugin to the proxy-wasm SDK's contexts. Each callback forwards to `Plugin`
//! with the proxy as its `Host`; what to answer is always the core's.

use std::cell::RefCell;
use std::rc::Rc;

use log::{error, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as WasmAction, ContextType};

use super::abi::{self, ProxyHost};
use crate::policy::Config;
#[cfg(feature = "crash-test")]
use crate::runtime::host::Host;
use crate::runtime::{unavailable, Action, Plugin, TICK_MS};

proxy_wasm::main! {{
    abi::install_logger();
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { plugin: None }) });
}}

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

    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, body_size: usize, _: usize) {
        let Some(plugin) = &self.plugin else { return };
        match plugin.try_borrow_mut() {
            Ok(mut p) => p.on_fetch_response(&mut ProxyHost, token_id, num_headers, body_size),
            Err(_) => warn!("jwt-guard: fetch response arrived re-entrantly; dropped"),
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        // Requests must not format debug lines Envoy would drop.
        if let Ok(level) = abi::log_level() {
            log::set_max_level(level);
        }
        let bytes = match abi::plugin_configuration() {
            Ok(b) => b,
            Err(s) => {
                error!("jwt-guard: could not read the plugin configuration: {s}");
                return false;
            }
        };
        // The VM's environment is Envoy's vm_config.environment_variables (Istio: vmConfig.env).
        let config =
            match Config::parse(&bytes).and_then(|mut c| c.resolve_secrets(|k| std::env::var(k).ok()).map(|()| c)) {
                Ok(c) => c,
                Err(e) => {
                    error!("{e}");
                    return false;
                }
            };
        self.plugin = Some(Rc::new(RefCell::new(Plugin::configure(config, &mut ProxyHost))));
        // The first tick (within TICK_MS) starts the fetch. Not here: Envoy also configures a
        // short-lived base VM that is destroyed at once, and a fetch it started would hold
        // the shared lease while nobody could receive the answer.
        if let Err(s) = abi::set_tick_period(TICK_MS) {
            error!("jwt-guard: the host refused a tick period ({s}): keys will not load");
        }
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
    /// An introspection call is dispatched while a request is decided, so the SDK delivers its
    /// answer here, to the request's context: it goes to the plugin as a fetch's does.
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, body_size: usize, _: usize) {
        let Some(plugin) = &self.plugin else { return };
        match plugin.try_borrow_mut() {
            Ok(mut p) => p.on_fetch_response(&mut ProxyHost, token_id, num_headers, body_size),
            Err(_) => warn!("jwt-guard: call response arrived re-entrantly; dropped"),
        }
    }

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
    fn on_http_response_headers(&mut self, _: usize, _: bool) -> WasmAction {
        if let Some(Ok(mut p)) = self.plugin.as_ref().map(|p| p.try_borrow_mut()) {
            p.on_response_headers(&mut ProxyHost, self.id);
        }
        WasmAction::Continue
    }

    fn on_http_request_headers(&mut self, _: usize, _: bool) -> WasmAction {
        let mut host = ProxyHost;
        #[cfg(feature = "crash-test")]
        crash_if_asked(&host);
        let borrowed = self.plugin.as_ref().map(|p| p.try_borrow_mut());
        let action = match borrowed {
            Some(Ok(mut p)) => p.on_request(&mut host, self.id),
            // Not configured, or re-entered: never let a request through unchecked.
            _ => unavailable(&mut host),
        };
        match action {
            Action::Continue => WasmAction::Continue,
            Action::Pause => WasmAction::Pause,
        }
    }
}

/// Test-only (feature `crash-test`): aborts the VM as a bug would.
#[cfg(feature = "crash-test")]
#[allow(clippy::panic)]
fn crash_if_asked(host: &ProxyHost) {
    let headers = host.request_header_map().unwrap_or_default();
    if crate::runtime::header_map::parse(&headers).iter().any(|(k, _)| *k == "x-jwt-guard-test-crash") {
        panic!("jwt-guard: crash requested by x-jwt-guard-test-crash (crash-test build)");
    }
}
