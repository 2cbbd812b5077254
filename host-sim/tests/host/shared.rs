//! Shared data (Envoy's CAS rules, removal) and shared queues (tokens, last registrant, one notification per
//! enqueue).

use crate::common::{host_probe, messages};
use host_sim::{Request, VmRef};

fn body(sim: &mut host_sim::Sim, vm: usize, path: &str) -> String {
    let s = sim.send(vm, Request::get(path));
    sim.outcome(s).reply().unwrap_or_else(|| panic!("{path}: {:?}", sim.outcome(s))).body_str()
}

#[test]
fn a_stale_cas_from_another_vm_is_rejected() {
    let mut sim = host_probe().workers(2).shared_data("k", "v0").build().unwrap();
    let (_, cas) = sim.shared_data().get("k").unwrap();
    assert_eq!(body(&mut sim, 0, "/cas-read/k"), format!("value=Some(\"v0\") cas=Some({cas})"));
    assert_eq!(body(&mut sim, 1, "/cas-read/k"), format!("value=Some(\"v0\") cas=Some({cas})"));
    assert_eq!(body(&mut sim, 0, "/cas-write/k/a"), "written");
    assert_eq!(body(&mut sim, 1, "/cas-write/k/b"), "CasMismatch");
    assert_eq!(sim.shared_data().get_str("k").as_deref(), Some("a"));
}

#[test]
fn cas_zero_is_unconditional_and_creation_ignores_cas_and_the_counter_is_global() {
    let sim = host_probe().build().unwrap();
    let data = sim.shared_data();
    assert!(data.set_with_cas("new", "x", 12345), "creation ignores the cas");
    let (_, first) = data.get("new").unwrap();
    data.set("other", "y");
    let (_, second) = data.get("other").unwrap();
    assert_eq!(second, first + 1, "one counter across keys");
    assert!(!data.set_with_cas("new", "z", first + 100));
    assert!(data.set_with_cas("new", "z", 0));
    assert_eq!(data.key_count(), 2);
    assert_eq!(data.total_bytes(), "new".len() + 1 + "other".len() + 1);
    assert_eq!(data.keys(), vec!["new".to_string(), "other".to_string()]);
}

#[test]
fn remove_keeps_the_key_with_an_empty_value_on_envoy() {
    let mut sim = host_probe().shared_data("k", "v").build().unwrap();
    assert_eq!(body(&mut sim, 0, "/remove/k"), "removed=Ok(()) value=None cas=true");
    let (value, _) = sim.shared_data().get("k").unwrap();
    assert!(value.is_empty());
    assert_eq!(sim.shared_data().key_count(), 1);
}

#[test]
fn only_the_last_registrant_gets_on_queue_ready_once_per_enqueue() {
    let mut sim = host_probe().workers(3).build().unwrap();
    assert_eq!(messages(&sim, "queue token=1").len(), 5, "canary, main and 3 workers share token 1");
    body(&mut sim, 0, "/enqueue/a");
    body(&mut sim, 1, "/enqueue/b");
    let ready: Vec<(VmRef, String)> =
        sim.logs_containing("queue_ready").iter().map(|l| (l.vm, l.message.clone())).collect();
    assert_eq!(
        ready,
        vec![
            (VmRef::Worker(2), "queue_ready queue=1 item=Some(\"a\")".to_string()),
            (VmRef::Worker(2), "queue_ready queue=1 item=Some(\"b\")".to_string()),
        ]
    );
    assert_eq!(sim.queue_len("q"), Some(0));
}

#[test]
fn resolve_shared_queue_finds_queues_of_the_own_vm_id() {
    let mut sim = host_probe().build().unwrap();
    assert_eq!(body(&mut sim, 0, "/resolve"), "resolved=Some(1)");
}

#[test]
fn vm_id_scopes_shared_data() {
    let sim = host_probe().vm_id("a").shared_data("k", "v").build().unwrap();
    assert!(sim.shared_data().get("k").is_some());
    assert!(sim.shared_data_of("").get("k").is_none());
}
