//! DPoP proofs accepted once per Envoy: the proof memory in shared data, seen by every VM,
//! written with the CAS, bounded, and failing closed.

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;
use crate::decision::proof_memory::{bucket_key, proof_key, record, Record, WAYS};

const HTU: &str = DPOP_HTU;

fn vms(n: u64, replay_cache_size: usize) -> Vec<(Plugin, FakeHost)> {
    vms_sharing_data(n, |host, _| {
        Plugin::configure(config_with(json!({"dpop": {"replay_cache_size": replay_cache_size}}), json!({})), host)
    })
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
    let (t, p) = (bound_token(), proof_for(&bound_token(), "j-1"));
    let statuses: Vec<u32> = vms.iter_mut().map(|(plugin, host)| send(plugin, host, 1, &t, &p)).collect();
    assert_eq!(statuses, vec![200, 401, 401, 401]);
    let (plugin, host) = &mut vms[3];
    plugin.on_tick(host);
    assert_eq!(host.metric("jwt_guard.requests.denied.dpop_replay"), 1);
    // A new proof passes anywhere.
    assert_eq!(send(plugin, host, 2, &t, &proof_for(&t, "j-2")), 200);
}

#[test]
fn two_vms_racing_on_one_proof_admit_exactly_one() {
    let mut vms = vms(2, 10_000);
    let (t, p) = (bound_token(), proof_for(&bound_token(), "race"));
    // VM 1 reads the bucket, then VM 0 records the same proof before VM 1 writes: VM 1's CAS
    // fails, it reads again and finds the proof.
    let key = proof_key(&ec_jkt(), "race", "GET", HTU);
    let bucket = bucket_key("p", &key, crate::decision::proof_memory::buckets(10_000));
    let Record::Write(theirs) = record(&[], &key, NOW + 120, NOW) else { panic!() };
    vms[1].1.race = Some((bucket, theirs));
    let (plugin, host) = &mut vms[1];
    assert_eq!(send(plugin, host, 1, &t, &p), 401, "the other VM's write won");
    assert!(host.race.is_none(), "the race happened");
}

#[test]
fn a_full_bucket_refuses_new_proofs_rather_than_forget_a_live_one_until_they_expire() {
    // replay_cache_size WAYS: one bucket.
    let mut vms = vms(1, WAYS);
    let (plugin, host) = &mut vms[0];
    let t = bound_token();
    for i in 0..WAYS as u32 {
        assert_eq!(send(plugin, host, i + 1, &t, &proof_for(&t, &format!("j-{i}"))), 200);
    }
    assert_eq!(send(plugin, host, 100, &t, &proof_for(&t, "j-last")), 503);
    plugin.on_tick(host);
    assert_eq!(host.metric("jwt_guard.requests.denied.dpop_replay_cache_full"), 1);
    // The first proofs are still refused as replays, not forgotten.
    assert_eq!(send(plugin, host, 101, &t, &proof_for(&t, "j-0")), 401);
    // Once they expire (iat + max_proof_age 60 s + skew 60 s), there is room again.
    host.now += 121_000;
    let fresh = dpop_proof(Algorithm::ES256, public_jwk("ec-1"), json!({}), {
        let mut c = dpop_claims("j-9", "GET", HTU, &t);
        c["iat"] = json!(NOW + 121);
        c
    });
    assert_eq!(send(plugin, host, 102, &t, &fresh), 200);
}

#[test]
fn shared_data_that_fails_refuses_the_proof() {
    let mut vms = vms(1, 10_000);
    let (plugin, host) = &mut vms[0];
    let t = bound_token();
    host.failing.insert("set_shared", HostStatus::INTERNAL_FAILURE);
    assert_eq!(send(plugin, host, 1, &t, &proof_for(&t, "a")), 503);
    host.failing.clear();
    host.failing.insert("get_shared", HostStatus::INTERNAL_FAILURE);
    assert_eq!(send(plugin, host, 2, &t, &proof_for(&t, "b")), 503);
}

/// `n` VMs of one Envoy whose provider requires DPoP nonces.
fn nonce_vms(n: u64) -> Vec<(Plugin, FakeHost)> {
    vms_sharing_data(n, |host, _| {
        Plugin::configure(
            config_with(json!({"dpop": {"require_nonce": true, "nonce_lifetime": "300s"}}), json!({})),
            host,
        )
    })
}

fn nonce_proof(token: &str, jti: &str, nonce: &str, iat: u64) -> String {
    let mut c = dpop_claims(jti, "GET", HTU, token);
    c["nonce"] = json!(nonce);
    c["iat"] = json!(iat);
    dpop_proof(Algorithm::ES256, public_jwk("ec-1"), json!({}), c)
}

#[test]
fn a_nonce_one_vm_issued_is_accepted_by_every_vm_of_its_envoy_and_by_no_other_envoy() {
    let mut vms = nonce_vms(4);
    let t = bound_token();
    let nonce = {
        let (plugin, host) = &mut vms[0];
        assert_eq!(send(plugin, host, 1, &t, &proof_for(&t, "first")), 401);
        let r = host.requests[&1].response.as_ref().unwrap();
        assert!(r.1.iter().any(|(k, v)| k == "www-authenticate" && v.contains("use_dpop_nonce")));
        r.1.iter().find(|(k, _)| k == "dpop-nonce").map(|(_, v)| v.clone()).expect("a nonce")
    };
    for (i, (plugin, host)) in vms.iter_mut().enumerate() {
        let p = nonce_proof(&t, &format!("vm-{i}"), &nonce, NOW);
        assert_eq!(send(plugin, host, 2, &t, &p), 200, "VM {i}");
    }
    // Another Envoy (its own shared data, so its own secret) refuses it, with its own nonce.
    let mut other = nonce_vms(1);
    let (plugin, host) = &mut other[0];
    assert_eq!(send(plugin, host, 1, &t, &nonce_proof(&t, "elsewhere", &nonce, NOW)), 401);
    let theirs = host.requests[&1].response.as_ref().unwrap().1.iter().find(|(k, _)| k == "dpop-nonce").cloned();
    assert!(theirs.is_some_and(|(_, v)| v != nonce));
}

#[test]
fn a_success_with_a_nonce_in_its_last_half_life_carries_the_next_on_the_response() {
    let mut vms = nonce_vms(1);
    let (plugin, host) = &mut vms[0];
    let t = bound_token();
    send(plugin, host, 1, &t, &proof_for(&t, "first"));
    let nonce =
        host.requests[&1].response.as_ref().unwrap().1.iter().find(|(k, _)| k == "dpop-nonce").unwrap().1.clone();
    host.now += 150_000; // the nonce's second window
    let now = host.now / 1000;
    assert_eq!(send(plugin, host, 2, &t, &nonce_proof(&t, "later", &nonce, now)), 200);
    plugin.on_response_headers(host, 2);
    let next = host.requests[&2].response_headers.iter().find(|(k, _)| k == "dpop-nonce").map(|(_, v)| v.clone());
    assert!(next.as_ref().is_some_and(|n| *n != nonce), "{next:?}");
    // A request with a fresh nonce gets none.
    assert_eq!(send(plugin, host, 3, &t, &nonce_proof(&t, "fresh", next.as_deref().unwrap(), now)), 200);
    plugin.on_response_headers(host, 3);
    assert!(host.requests[&3].response_headers.is_empty());
}
