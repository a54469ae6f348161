//! DPoP proofs accepted once per Envoy: the proof memory in shared data, seen by every VM,
//! written with the CAS, bounded, and failing closed.

use std::cell::RefCell;
use std::rc::Rc;

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;
use crate::decision::proof_memory::{bucket_key, proof_key, record, Record};
use crate::jwks::jwk_thumbprint;

const HTU: &str = "https://api.test/items";

fn jkt() -> String {
    jwk_thumbprint(public_jwk("ec-1").as_object().unwrap()).unwrap()
}

fn token() -> String {
    access_token(json!({"cnf": {"jkt": jkt()}}))
}

fn proof(token: &str, jti: &str) -> String {
    dpop_proof(Algorithm::ES256, public_jwk("ec-1"), json!({}), dpop_claims(jti, "GET", HTU, token))
}

fn vms(n: u64, replay_cache_size: usize) -> Vec<(Plugin, FakeHost)> {
    let store = Rc::new(RefCell::new(Store::default()));
    (0..n)
        .map(|_| {
            let mut host = FakeHost { now: NOW * 1000, store: store.clone(), ..FakeHost::default() };
            let config = config_with(json!({"dpop": {"replay_cache_size": replay_cache_size}}), json!({}));
            let plugin = Plugin::configure(config, &mut host);
            (plugin, host)
        })
        .collect()
}

/// GET https://api.test/items with the bound token and `proof`: the status (200 when let through).
fn send(plugin: &mut Plugin, host: &mut FakeHost, id: u32, token: &str, proof: &str) -> u32 {
    let headers = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":scheme".to_string(), b"https".to_vec()),
        (":authority".to_string(), b"api.test".to_vec()),
        (":path".to_string(), b"/items".to_vec()),
        ("authorization".to_string(), format!("DPoP {token}").into_bytes()),
        ("dpop".to_string(), proof.as_bytes().to_vec()),
    ];
    host.requests.insert(id, FakeRequest { headers, ..FakeRequest::default() });
    host.effective = id;
    match plugin.on_request(host, id) {
        Action::Continue => 200,
        Action::Pause => host.status(id).unwrap_or(0),
    }
}

#[test]
fn a_proof_accepted_by_one_vm_is_refused_by_every_other() {
    let mut vms = vms(4, 10_000);
    let (t, p) = (token(), proof(&token(), "j-1"));
    let statuses: Vec<u32> = vms.iter_mut().map(|(plugin, host)| send(plugin, host, 1, &t, &p)).collect();
    assert_eq!(statuses, vec![200, 401, 401, 401]);
    let (plugin, host) = &mut vms[3];
    plugin.on_tick(host);
    assert_eq!(host.metric("jwt_guard.requests.denied.dpop_replay"), 1);
    // A new proof passes anywhere.
    assert_eq!(send(plugin, host, 2, &t, &proof(&t, "j-2")), 200);
}

#[test]
fn two_vms_racing_on_one_proof_admit_exactly_one() {
    let mut vms = vms(2, 10_000);
    let (t, p) = (token(), proof(&token(), "race"));
    // VM 1 reads the bucket, then VM 0 records the same proof before VM 1 writes: VM 1's CAS
    // fails, it reads again and finds the proof.
    let key = proof_key(&jkt(), "race", "GET", HTU);
    let bucket = bucket_key("p", &key, crate::decision::proof_memory::buckets(10_000));
    let Record::Write(theirs) = record(&[], &key, NOW + 120, NOW) else { panic!() };
    vms[1].1.race = Some((bucket, theirs));
    let (plugin, host) = &mut vms[1];
    assert_eq!(send(plugin, host, 1, &t, &p), 401, "the other VM's write won");
    assert!(host.race.is_none(), "the race happened");
}

#[test]
fn a_full_bucket_refuses_new_proofs_rather_than_forget_a_live_one_until_they_expire() {
    // replay_cache_size 8: one bucket of 8.
    let mut vms = vms(1, 8);
    let (plugin, host) = &mut vms[0];
    let t = token();
    for i in 0..8 {
        assert_eq!(send(plugin, host, i + 1, &t, &proof(&t, &format!("j-{i}"))), 200);
    }
    assert_eq!(send(plugin, host, 20, &t, &proof(&t, "j-8")), 503);
    plugin.on_tick(host);
    assert_eq!(host.metric("jwt_guard.requests.denied.dpop_replay_cache_full"), 1);
    // The first proofs are still refused as replays, not forgotten.
    assert_eq!(send(plugin, host, 21, &t, &proof(&t, "j-0")), 401);
    // Once they expire (iat + max_proof_age 60 s + skew 60 s), there is room again.
    host.now += 121_000;
    let fresh = dpop_proof(Algorithm::ES256, public_jwk("ec-1"), json!({}), {
        let mut c = dpop_claims("j-9", "GET", HTU, &t);
        c["iat"] = json!(NOW + 121);
        c
    });
    assert_eq!(send(plugin, host, 22, &t, &fresh), 200);
}

#[test]
fn shared_data_that_fails_refuses_the_proof() {
    let mut vms = vms(1, 10_000);
    let (plugin, host) = &mut vms[0];
    let t = token();
    host.failing.insert("set_shared", HostStatus::INTERNAL_FAILURE);
    assert_eq!(send(plugin, host, 1, &t, &proof(&t, "a")), 503);
    host.failing.clear();
    host.failing.insert("get_shared", HostStatus::INTERNAL_FAILURE);
    assert_eq!(send(plugin, host, 2, &t, &proof(&t, "b")), 503);
}
