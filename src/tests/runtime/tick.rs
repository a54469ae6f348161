//! The tick: quick while requests wait, so a VM sees another VM's answer soon, and deciding
//! the paused requests again only when something changed or a full tick passed.

use super::*;
use crate::runtime::{Action, TICK_MS, WAITING_TICK_MS};
use crate::testkit::*;

#[test]
fn the_tick_quickens_while_requests_wait_and_slows_when_none_do() {
    let (mut plugin, mut host) = started();
    plugin.on_tick(&mut host);
    assert_eq!(host.tick_ms, None, "nothing waits: the shell's period stands");
    assert_eq!(host.arrive(&mut plugin, 10, Some(&bearer())), Action::Pause);
    assert_eq!(host.tick_ms, Some(WAITING_TICK_MS));
    answer(&mut plugin, &mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    assert!(host.requests[&10].resumed);
    assert_eq!(host.tick_ms, Some(TICK_MS));
}

#[test]
fn a_request_that_goes_away_slows_the_tick_at_the_next_one() {
    let (mut plugin, mut host) = started();
    host.arrive(&mut plugin, 10, Some(&bearer()));
    plugin.on_done(10);
    host.now += WAITING_TICK_MS;
    plugin.on_tick(&mut host);
    assert_eq!(host.tick_ms, Some(TICK_MS));
}

#[test]
fn a_request_waiting_on_another_vms_fetch_goes_on_at_the_next_quick_tick() {
    let mut vms = vms_of_one_envoy(2);
    tick_all(&mut vms, 0);
    let fetcher = vms.iter().position(|(_, h)| !h.dispatched.is_empty()).unwrap();
    let other = 1 - fetcher;
    {
        let (plugin, host) = &mut vms[other];
        assert_eq!(host.arrive(plugin, 10, Some(&bearer())), Action::Pause);
        assert_eq!(host.tick_ms, Some(WAITING_TICK_MS));
    }
    {
        let (plugin, host) = &mut vms[fetcher];
        answer(plugin, host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    }
    let (plugin, host) = &mut vms[other];
    host.now += WAITING_TICK_MS;
    plugin.on_tick(host);
    assert!(host.requests[&10].resumed, "keys taken from shared data at the quick tick");
    assert_eq!(host.tick_ms, Some(TICK_MS));
}

#[test]
fn quick_ticks_decide_paused_requests_again_only_on_a_change_or_a_full_tick() {
    let (mut plugin, mut host) = started();
    host.arrive(&mut plugin, 10, Some(&bearer()));
    let before = host.switches;
    for _ in 1..TICK_MS / WAITING_TICK_MS {
        host.now += WAITING_TICK_MS;
        plugin.on_tick(&mut host);
    }
    assert_eq!(host.switches, before, "nothing changed within a full tick: not decided again");
    host.now += WAITING_TICK_MS;
    plugin.on_tick(&mut host);
    assert_eq!(host.switches, before + 1, "a full tick: decided again (so key deadlines become 503s)");
}
