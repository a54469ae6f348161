//! The runtime against a fake host: its fake, shared by `lifecycle` (pause, fetch, resume,
//! deadlines, bounds, four VMs) and `host_faults` (every host call failing).

mod host_faults;
mod introspection;
mod lifecycle;
mod proofs;
mod tick;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::json;

use crate::policy::Config;
use crate::runtime::host::{Host, HostResult, HostStatus};
use crate::runtime::{Action, Plugin};
use crate::testkit::*;

pub(super) type SentResponse = (u32, Vec<(String, String)>, Vec<u8>);
/// A call with a body: cluster, headers, body, timeout.
pub(super) type Posted = (String, Vec<(String, String)>, Vec<u8>, u64);

#[derive(Default)]
pub(super) struct FakeRequest {
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) response: Option<SentResponse>,
    /// The grpc-status of the local reply, for a gRPC request.
    pub(super) grpc_status: Option<u32>,
    pub(super) resumed: bool,
    /// What the connection property `sha256_peer_certificate_digest` holds.
    pub(super) peer_certificate: Option<Vec<u8>>,
    /// Filter state the plugin set.
    pub(super) properties: Vec<(String, String)>,
    /// Headers added to the upstream's response.
    pub(super) response_headers: Vec<(String, String)>,
}

/// Proxy-wasm shared data: one per Envoy process, shared by all its VMs.
#[derive(Default)]
pub(super) struct Store {
    pub(super) map: HashMap<String, (Vec<u8>, u32)>,
    pub(super) next_cas: u32,
}

#[derive(Default)]
pub(super) struct FakeHost {
    pub(super) now: u64,
    pub(super) effective: u32,
    pub(super) requests: HashMap<u32, FakeRequest>,
    pub(super) dispatched: Vec<(String, String, String, u64)>,
    /// Calls with a body (introspection): cluster, headers, body, timeout.
    pub(super) posted: Vec<Posted>,
    pub(super) next_token: u32,
    pub(super) store: Rc<RefCell<Store>>,
    pub(super) metrics: HashMap<u32, (String, u64)>,
    /// The answer being delivered: `:status` (None: no such header) and body.
    pub(super) call: (Option<Vec<u8>>, Vec<u8>),
    /// The proxy's status for a failed call.
    pub(super) call_status: (u32, String),
    /// Host calls that fail, by name, with the status they return.
    pub(super) failing: HashMap<&'static str, HostStatus>,
    /// Properties declared as strings.
    pub(super) declared: Vec<String>,
    /// Another VM's write to this key, landing just before this VM's next CAS write to it.
    pub(super) race: Option<(String, Vec<u8>)>,
    /// How often the plugin switched to a paused request to decide it again.
    pub(super) switches: usize,
    /// The tick period the plugin last asked for.
    pub(super) tick_ms: Option<u64>,
}

impl FakeHost {
    pub(super) fn fails(&self, call: &'static str) -> HostResult<()> {
        match self.failing.get(call) {
            Some(s) => Err(*s),
            None => Ok(()),
        }
    }
}

impl Host for FakeHost {
    fn set_tick_period(&mut self, ms: u64) -> HostResult<()> {
        self.fails("set_tick_period")?;
        self.tick_ms = Some(ms);
        Ok(())
    }
    fn now_ms(&self) -> HostResult<u64> {
        self.fails("now_ms")?;
        Ok(self.now)
    }
    fn random(&mut self) -> u64 {
        0
    }
    fn secure_random(&mut self, out: &mut [u8]) -> HostResult<()> {
        self.fails("secure_random")?;
        // Distinct per fake Envoy (store), like a real secret.
        let seed = Rc::as_ptr(&self.store) as usize as u8;
        out.iter_mut().enumerate().for_each(|(i, b)| *b = seed.wrapping_add(i as u8).wrapping_mul(31));
        Ok(())
    }
    fn dispatch_get(&mut self, cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> HostResult<u32> {
        self.fails("dispatch_get")?;
        self.next_token += 1;
        self.dispatched.push((cluster.into(), authority.into(), path.into(), timeout_ms));
        Ok(self.next_token)
    }
    fn dispatch(&mut self, cluster: &str, headers: &[(&str, &str)], body: &[u8], timeout_ms: u64) -> HostResult<u32> {
        self.fails("dispatch")?;
        self.next_token += 1;
        let h = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        self.posted.push((cluster.into(), h, body.to_vec(), timeout_ms));
        Ok(self.next_token)
    }
    fn call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        self.fails("call_response_header")?;
        Ok(if name == ":status" { self.call.0.clone() } else { None })
    }
    fn call_response_body(&self, max: usize) -> HostResult<Vec<u8>> {
        self.fails("call_response_body")?;
        Ok(self.call.1[..max.min(self.call.1.len())].to_vec())
    }
    fn call_status(&self) -> HostResult<(u32, String)> {
        self.fails("call_status")?;
        Ok(self.call_status.clone())
    }
    fn define_metric(&mut self, _gauge: bool, name: &str) -> HostResult<u32> {
        self.fails("define_metric")?;
        let id = self.metrics.len() as u32 + 1;
        self.metrics.insert(id, (name.to_string(), 0));
        Ok(id)
    }
    fn increment_metric(&mut self, id: u32, by: u64) -> HostResult<()> {
        self.fails("increment_metric")?;
        if let Some(m) = self.metrics.get_mut(&id) {
            m.1 += by;
        }
        Ok(())
    }
    fn record_metric(&mut self, id: u32, value: u64) -> HostResult<()> {
        self.fails("record_metric")?;
        if let Some(m) = self.metrics.get_mut(&id) {
            m.1 = value;
        }
        Ok(())
    }
    fn get_shared(&self, key: &str) -> HostResult<(Option<Vec<u8>>, Option<u32>)> {
        self.fails("get_shared")?;
        Ok(match self.store.borrow().map.get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        })
    }
    fn set_shared(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> HostResult<()> {
        self.fails("set_shared")?;
        // Envoy's semantics: a CAS only guards an existing key.
        let mut store = self.store.borrow_mut();
        if cas.is_some() && self.race.as_ref().is_some_and(|(k, _)| k == key) {
            if let Some((k, v)) = self.race.take() {
                store.next_cas += 1;
                let c = store.next_cas;
                store.map.insert(k, (v, c));
            }
        }
        if let (Some(c), Some((_, current))) = (cas, store.map.get(key)) {
            if c != *current {
                return Err(HostStatus::CAS_MISMATCH);
            }
        }
        store.next_cas += 1;
        let cas = store.next_cas;
        store.map.insert(key.to_string(), (value.to_vec(), cas));
        Ok(())
    }
    fn set_effective_context(&mut self, id: u32) -> HostResult<()> {
        self.fails("set_effective_context")?;
        self.switches += 1;
        self.effective = id;
        if self.requests.contains_key(&id) {
            Ok(())
        } else {
            Err(HostStatus::BAD_ARGUMENT)
        }
    }
    fn request_header_map(&self) -> HostResult<Vec<u8>> {
        self.fails("request_header_map")?;
        let headers = self.requests.get(&self.effective).map(|r| r.headers.clone()).unwrap_or_default();
        let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        Ok(crate::runtime::header_map::serialize(&pairs))
    }
    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>> {
        self.fails("property")?;
        if path != ["connection", "sha256_peer_certificate_digest"] {
            return Ok(None);
        }
        Ok(self.requests.get(&self.effective).and_then(|r| r.peer_certificate.clone()))
    }
    fn set_property(&mut self, name: &str, value: &str) -> HostResult<()> {
        self.fails("set_property")?;
        if let Some(r) = self.requests.get_mut(&self.effective) {
            r.properties.retain(|(k, _)| k != name);
            r.properties.push((name.to_string(), value.to_string()));
        }
        Ok(())
    }
    fn declare_string_property(&mut self, name: &str) -> HostResult<()> {
        self.fails("declare_string_property")?;
        self.declared.push(name.to_string());
        Ok(())
    }
    fn remove_request_header(&mut self, name: &str) -> HostResult<()> {
        self.fails("remove_request_header")?;
        if let Some(r) = self.requests.get_mut(&self.effective) {
            r.headers.retain(|(k, _)| k != name);
        }
        Ok(())
    }
    fn set_request_header(&mut self, name: &str, value: &str) -> HostResult<()> {
        self.fails("set_request_header")?;
        if let Some(r) = self.requests.get_mut(&self.effective) {
            r.headers.retain(|(k, _)| k != name);
            r.headers.push((name.into(), value.as_bytes().to_vec()));
        }
        Ok(())
    }
    fn set_response_header(&mut self, name: &str, value: &str) -> HostResult<()> {
        self.fails("set_response_header")?;
        if let Some(r) = self.requests.get_mut(&self.effective) {
            r.response_headers.push((name.to_string(), value.to_string()));
        }
        Ok(())
    }
    fn send_response(
        &mut self,
        status: u32,
        grpc_status: Option<u32>,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HostResult<()> {
        self.fails("send_response")?;
        if let Some(r) = self.requests.get_mut(&self.effective) {
            r.response = Some((status, headers.to_vec(), body.to_vec()));
            r.grpc_status = grpc_status;
        }
        Ok(())
    }
    fn resume_request(&mut self) -> HostResult<()> {
        self.fails("resume_request")?;
        if let Some(r) = self.requests.get_mut(&self.effective) {
            r.resumed = true;
        }
        Ok(())
    }
}

/// `n` VMs of one Envoy (one shared store), VM `i` made by `plugin(its host, owner 100 + i)`.
pub(super) fn vms_sharing_data(n: u64, plugin: impl Fn(&mut FakeHost, u64) -> Plugin) -> Vec<(Plugin, FakeHost)> {
    let store = Rc::new(RefCell::new(Store::default()));
    (0..n)
        .map(|i| {
            let mut host = FakeHost { now: NOW * 1000, store: store.clone(), ..FakeHost::default() };
            (plugin(&mut host, 100 + i), host)
        })
        .collect()
}

/// `n` VMs of one Envoy with remote keys, ticking in turn.
pub(super) fn vms_of_one_envoy(n: u64) -> Vec<(Plugin, FakeHost)> {
    vms_sharing_data(n, |host, owner| Plugin::new(remote_config(), host.now, owner))
}

pub(super) fn tick_all(vms: &mut [(Plugin, FakeHost)], advance: u64) {
    for (plugin, host) in vms.iter_mut() {
        host.now += advance;
        plugin.on_tick(host);
    }
}

/// Delivers an answer to fetch `token`: `status` None is a call that failed without one.
pub(super) fn answer(plugin: &mut Plugin, host: &mut FakeHost, token: u32, status: Option<u32>, body: Option<Vec<u8>>) {
    let body = body.unwrap_or_default();
    let size = body.len();
    let headers = usize::from(status.is_some()) * 3;
    host.call = (status.map(|s| s.to_string().into_bytes()), body);
    plugin.on_fetch_response(host, token, headers, size);
}

impl FakeHost {
    pub(super) fn arrive(&mut self, plugin: &mut Plugin, id: u32, auth: Option<&str>) -> Action {
        let mut headers = vec![(":method".to_string(), b"GET".to_vec()), (":path".to_string(), b"/x".to_vec())];
        if let Some(a) = auth {
            headers.push(("authorization".into(), a.as_bytes().to_vec()));
        }
        self.requests.insert(id, FakeRequest { headers, ..FakeRequest::default() });
        self.effective = id;
        plugin.on_request(self, id)
    }

    pub(super) fn metric(&self, name: &str) -> u64 {
        self.metrics.values().find(|(n, _)| n == name).map_or_else(|| panic!("no metric {name}"), |(_, v)| *v)
    }

    pub(super) fn status(&self, id: u32) -> Option<u32> {
        self.requests[&id].response.as_ref().map(|r| r.0)
    }

    pub(super) fn header(&self, id: u32, name: &str) -> Option<String> {
        self.requests[&id].headers.iter().find(|(k, _)| k == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

pub(super) fn remote_config() -> Config {
    config_with(
        json!({"local_jwks": null,
        "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}],
        "remote_jwks": {"http_uri": {"uri": "https://idp.test/.well-known/jwks.json", "cluster": "idp", "timeout": "2s"},
                        "cache_duration": "60s"}}),
        json!({}),
    )
}

pub(super) fn bearer() -> String {
    format!("Bearer {}", access_token(json!({})))
}

pub(super) fn started() -> (Plugin, FakeHost) {
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    let mut plugin = Plugin::new(remote_config(), host.now, 1);
    plugin.on_tick(&mut host);
    (plugin, host)
}
