use super::*;
use crate::login::provider::Provider;
use crate::login::testkeys::{discovery_json, login_config, ok_json, path_of, TestIdpKeys};
use crate::store::MemoryStore;

const S: u64 = 1_000_000_000;

#[test]
fn four_vms_fetch_discovery_and_jwks_once() {
    let cfg = login_config();
    let store = MemoryStore::new();
    let idp = TestIdpKeys::new();
    let mut vms: Vec<Fetcher> = (0..4).map(|_| Fetcher::new()).collect();
    let mut calls = Vec::new();
    for (i, vm) in vms.iter_mut().enumerate() {
        if let Some(call) = vm.poll(&cfg, &store, &format!("vm{i}"), S) {
            calls.push((i, call));
        }
    }
    assert_eq!(calls.len(), 1);
    let (leader, call) = calls.remove(0);
    assert_eq!(call.kind, LoginCallKind::Discovery);
    assert_eq!(path_of(&call), "/.well-known/openid-configuration");
    let mut provider = Provider::new();
    provider.sync(&store, &cfg);
    assert!(provider.ready().is_none());
    let uid = format!("vm{leader}");
    let next = vms[leader].on_answer(&cfg, &store, &uid, S + 1, &ok_json(&discovery_json()));
    let FetchStep::Call(jwks_call) = next else {
        panic!("{next:?}")
    };
    assert_eq!(path_of(&jwks_call), "/jwks");
    // Others still see the lease.
    for (i, vm) in vms.iter_mut().enumerate() {
        assert!(vm.poll(&cfg, &store, &format!("vm{i}"), S + 2).is_none());
    }
    let done = vms[leader].on_answer(&cfg, &store, &uid, S + 3, &ok_json(&idp.jwks_json()));
    assert_eq!(done, FetchStep::Done);
    for (i, vm) in vms.iter_mut().enumerate() {
        assert!(vm.poll(&cfg, &store, &format!("vm{i}"), S + 4).is_none());
    }
    provider.sync(&store, &cfg);
    let (metadata, keys) = provider.ready().unwrap();
    assert_eq!(
        metadata.authorization_endpoint,
        "https://idp.example.com/auth"
    );
    assert_eq!(
        metadata.revocation_endpoint.as_ref().unwrap().path,
        "/token/revocation"
    );
    assert_eq!(keys.len(), 3);
    // Periodic refresh after metadata_refresh.
    let later = S + 3600 * S + 10;
    let refetch = vms[2].poll(&cfg, &store, "vm2", later).unwrap();
    assert_eq!(refetch.kind, LoginCallKind::Discovery);
}

#[test]
fn issuer_mismatch_fails_with_backoff_logged_once_per_streak() {
    let cfg = login_config();
    let store = MemoryStore::new();
    let mut vm = Fetcher::new();
    let mut wrong = serde_json::from_str::<serde_json::Value>(&discovery_json()).unwrap();
    wrong["issuer"] = "https://idp.example.com/".into();
    vm.poll(&cfg, &store, "a", S).unwrap();
    let step = vm.on_answer(&cfg, &store, "a", S, &ok_json(&wrong.to_string()));
    let FetchStep::Failed(f) = step else { panic!() };
    assert!(f.first_of_streak && f.reason.contains("issuer"));
    assert_eq!(f.retry_in_ns, S);
    assert_eq!(retry_after_s(&cfg, &store, S), 1);
    assert!(vm.poll(&cfg, &store, "a", S + S / 2).is_none(), "backoff");
    vm.poll(&cfg, &store, "a", 2 * S).unwrap();
    let FetchStep::Failed(f) = vm.on_answer(&cfg, &store, "a", 2 * S, &IdpAnswer::Timeout) else {
        panic!()
    };
    assert!(!f.first_of_streak);
    assert_eq!(f.retry_in_ns, 2 * S);
    let mut provider = Provider::new();
    provider.sync(&store, &cfg);
    assert!(provider.ready().is_none());
}

#[test]
fn a_dead_leaders_lease_expires_and_unknown_kids_refetch_rate_limited() {
    let cfg = login_config();
    let store = MemoryStore::new();
    let idp = TestIdpKeys::new();
    let mut dead = Fetcher::new();
    dead.poll(&cfg, &store, "dead", S).unwrap();
    let mut vm = Fetcher::new();
    assert!(vm.poll(&cfg, &store, "b", S + 9 * S).is_none());
    let call = vm.poll(&cfg, &store, "b", S + 10 * S).unwrap();
    assert_eq!(call.kind, LoginCallKind::Discovery);
    let t = 11 * S;
    let FetchStep::Call(_) = vm.on_answer(&cfg, &store, "b", t, &ok_json(&discovery_json())) else {
        panic!()
    };
    assert_eq!(
        vm.on_answer(&cfg, &store, "b", t, &ok_json(&idp.jwks_json())),
        FetchStep::Done
    );
    // Unknown kid: a refetch once the JWKS is KID_REFETCH_INTERVAL old,
    // then none for another interval.
    request_jwks_refetch(&cfg, &store);
    assert!(vm.poll(&cfg, &store, "b", t + S).is_none());
    let t2 = t + KID_REFETCH_INTERVAL_NS;
    let call = vm.poll(&cfg, &store, "b", t2).unwrap();
    assert_eq!(call.kind, LoginCallKind::Jwks);
    assert_eq!(
        vm.on_answer(&cfg, &store, "b", t2, &ok_json(&idp.jwks_json())),
        FetchStep::Done
    );
    request_jwks_refetch(&cfg, &store);
    assert!(vm.poll(&cfg, &store, "b", t2 + S).is_none());
    assert!(vm
        .poll(&cfg, &store, "b", t2 + KID_REFETCH_INTERVAL_NS)
        .is_some());
}

#[test]
fn without_discovery_only_the_configured_jwks_is_fetched() {
    let mut cfg = login_config();
    {
        let login = cfg.login.as_mut().unwrap();
        login.provider.discovery = false;
        login.provider.authorization_endpoint = Some("https://idp.example.com/authorize".into());
        login.provider.jwks_uri = Some(crate::login::testkeys::endpoint("/keys"));
    }
    let store = MemoryStore::new();
    let mut vm = Fetcher::new();
    let call = vm.poll(&cfg, &store, "a", S).unwrap();
    assert_eq!((call.kind, path_of(&call)), (LoginCallKind::Jwks, "/keys"));
    let FetchStep::Failed(_) = vm.on_answer(&cfg, &store, "a", S, &ok_json("{\"keys\": []}"))
    else {
        panic!()
    };
}
