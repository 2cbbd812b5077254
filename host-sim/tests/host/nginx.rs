//! The nginx (ngx_wasm_module prerelease-0.6.0) profile's differences from Envoy, one probe request each. The
//! numbers refer to host-sim/README.md, "nginx profile".

use crate::common::{host_probe, messages};
use host_sim::{CallFailure, CalloutReply, Cluster, Outcome, Profile, Request, ShmEviction, Sim, SimBuilder, SimError, VmRef};
use std::time::Duration;

/// The probe registers no queue (`no_queue`): nginx.conf declares none.
fn nginx() -> SimBuilder {
    host_probe().profile(Profile::Nginx).plugin_config("no_queue")
}

fn body(sim: &mut Sim, path: &str) -> String {
    let s = sim.send(0, Request::get(path));
    sim.outcome(s).reply().unwrap_or_else(|| panic!("{path}: {:?}", sim.outcome(s))).body_str()
}

fn kv(sim: &mut Sim, op: &str, key: &str, value: &str, cas: u32) -> String {
    let key = key.replace('/', "%2F");
    body(sim, &format!("/kv?op={op}&key={key}&value={value}&cas={cas}")).trim_end().to_string()
}

/// The trace the probe sent back in `x-probe-trace`.
fn trace(outcome: &Outcome) -> String {
    outcome.reply().and_then(|r| r.header("x-probe-trace")).unwrap_or_else(|| panic!("no trace: {outcome:?}")).to_string()
}

/// Two keys with the same CRC-32 (found by brute force; sequential names rarely collide).
const ALIASES: (&str, &str) = ("alias-29685295", "alias-32060020");

// ---- 1. shared data -----------------------------------------------------------------------------------------

#[test]
fn shared_data_writes_follow_ngx_wasm_module_cas_rules() {
    let mut sim = nginx().build().unwrap();
    assert_eq!(kv(&mut sim, "set", "k", "v", 5), "Err(CasMismatch)", "an absent key is created only with cas 0");
    assert_eq!(kv(&mut sim, "set", "k", "v", 0), "Ok(())");
    assert_eq!(kv(&mut sim, "get", "k", "", 0), "value=Some(\"v\") cas=Some(1)", "per-key counter from 1");
    assert_eq!(kv(&mut sim, "set", "k", "w", 0), "Err(CasMismatch)", "cas 0 on an existing key");
    assert_eq!(kv(&mut sim, "set", "k", "w", 1), "Ok(())");
    assert_eq!(kv(&mut sim, "get", "k", "", 0), "value=Some(\"w\") cas=Some(2)");
    assert_eq!(kv(&mut sim, "set", "other", "x", 0), "Ok(())");
    assert_eq!(kv(&mut sim, "get", "other", "", 0), "value=Some(\"x\") cas=Some(1)", "not one global counter");
    assert_eq!(kv(&mut sim, "del", "k", "", 0), "Err(CasMismatch)", "a delete checks the cas too");
    assert_eq!(kv(&mut sim, "del", "k", "", 2), "Ok(())");
    assert_eq!(kv(&mut sim, "get", "k", "", 0), "value=None cas=None");
    assert_eq!(kv(&mut sim, "del", "k", "", 0), "Err(CasMismatch)", "deleting an absent key");
    assert_eq!(kv(&mut sim, "set", "k", "again", 0), "Ok(())");
    assert_eq!(kv(&mut sim, "get", "k", "", 0), "value=Some(\"again\") cas=Some(1)", "back to 1 after delete + re-create");
    assert_eq!(kv(&mut sim, "empty", "k", "", 1), "Ok(())");
    assert_eq!(kv(&mut sim, "get", "k", "", 0), "value=Some(\"\") cas=Some(2)", "Some(b\"\") stores an empty value");
    assert_eq!(sim.shared_data().keys(), vec!["k".to_string(), "other".to_string()]);
}

#[test]
fn keys_are_matched_by_crc32_only() {
    let (first, second) = (ALIASES.0.to_string(), ALIASES.1.to_string());
    assert_eq!(crc32fast::hash(first.as_bytes()), crc32fast::hash(second.as_bytes()));
    let mut sim = nginx().build().unwrap();
    assert_eq!(kv(&mut sim, "set", &first, "v1", 0), "Ok(())");
    assert_eq!(kv(&mut sim, "get", &second, "", 0), "value=Some(\"v1\") cas=Some(1)", "the alias reads the other key's value");
    assert_eq!(kv(&mut sim, "set", &second, "v2", 0), "Err(CasMismatch)", "it exists for the alias too");
    assert_eq!(kv(&mut sim, "set", &second, "v2", 1), "Ok(())");
    assert_eq!(sim.shared_data().keys(), vec![first.clone()], "overwritten in place: the old key bytes stay");
    assert_eq!(sim.shared_data().get_str(&first).as_deref(), Some("v2"));
    // A longer value reallocates the entry, with the new key.
    assert_eq!(kv(&mut sim, "set", &second, "longer", 2), "Ok(())");
    assert_eq!(sim.shared_data().keys(), vec![second.clone()]);
    assert_eq!(kv(&mut sim, "get", &first, "", 0), "value=Some(\"longer\") cas=Some(3)");
}

#[test]
fn namespaced_keys_go_to_their_zone_else_to_the_default_one() {
    let mut sim = nginx().shm_kv("*", Some(1 << 20), ShmEviction::None).shm_kv("ns", Some(1 << 20), ShmEviction::None).build().unwrap();
    assert_eq!(kv(&mut sim, "set", "ns/a", "1", 0), "Ok(())");
    assert_eq!(kv(&mut sim, "set", "other/a", "2", 0), "Ok(())");
    let (ns_used, _) = sim.shared_data().zone_usage("ns").unwrap();
    let (default_used, _) = sim.shared_data().zone_usage("*").unwrap();
    assert!(ns_used > 0 && default_used > 0, "one entry in each zone: {ns_used} {default_used}");
    // Without a `*` zone a key whose namespace names no zone has nowhere to go: the hostcall traps.
    let mut sim = nginx().shm_kv("ns", None, ShmEviction::None).build().unwrap();
    assert_eq!(kv(&mut sim, "set", "ns/a", "1", 0), "Ok(())");
    let s = sim.send(0, Request::get("/kv?op=set&key=plain&value=1&cas=0"));
    assert_eq!(sim.outcome(s).status(), Some(500));
    assert!(sim.traps()[0].message.contains("could not resolve namespace"), "{:?}", sim.traps());
    // A namespace that names an shm_queue zone.
    let mut sim = nginx().shm_queue("q").build().unwrap();
    let s = sim.send(0, Request::get("/kv?op=set&key=q%2Fa&value=1&cas=0"));
    assert_eq!(sim.outcome(s).status(), Some(500));
    assert!(sim.traps()[0].message.contains("attempt to set key/value in a queue"), "{:?}", sim.traps());
}

#[test]
fn a_full_zone_traps_without_eviction_and_evicts_with_lru() {
    let value = "x".repeat(3000);
    let mut sim = nginx().shm_kv("*", Some(16 * 1024), ShmEviction::None).build().unwrap();
    let (_, capacity) = sim.shared_data().zone_usage("*").unwrap();
    assert_eq!(capacity, 3 * 4096, "16 KiB: three slab pages once the pool's header is taken");
    for i in 0..3 {
        assert_eq!(kv(&mut sim, "set", &format!("k{i}"), &value, 0), "Ok(())");
    }
    let s = sim.send(0, Request::get(format!("/kv?op=set&key=k3&value={value}&cas=0")));
    assert_eq!(sim.outcome(s).status(), Some(500), "the hostcall traps: no status comes back");
    assert!(sim.traps()[0].message.contains("could not write to slab"), "{:?}", sim.traps());
    assert!(!sim.logs_containing("no memory").is_empty());
    let mut sim = nginx().shm_kv("*", Some(16 * 1024), ShmEviction::Lru).build().unwrap();
    for i in 0..5 {
        assert_eq!(kv(&mut sim, "set", &format!("k{i}"), &value, 0), "Ok(())");
    }
    assert_eq!(sim.shared_data().keys(), vec!["k2", "k3", "k4"], "the least recently used went silently");
}

// ---- 2. no effective context: the root cannot act on a request ----------------------------------------------

#[test]
fn root_actions_on_a_request_crash_the_worker_whatever_the_effective_context() {
    let cases = [
        ("resume", "proxy_continue_stream"),
        ("local", "proxy_send_local_response"),
        ("read-header", "proxy_get_header_map_value"),
        ("write-header", "proxy_replace_header_map_value"),
        ("body", "proxy_get_buffer_bytes"),
    ];
    for (action, hostcall) in cases {
        let mut sim = nginx().plugin_config(format!("no_queue;tick=10;tick_action={action}")).build().unwrap();
        let paused = sim.send(0, Request::get("/pause-for-root"));
        sim.advance(Duration::from_millis(10));
        let crashes = sim.take_host_crashes();
        assert_eq!(crashes.len(), 1, "{action}: {crashes:?}");
        assert_eq!((crashes[0].hostcall.as_str(), crashes[0].function.as_str()), (hostcall, "proxy_on_tick"), "{action}");
        assert!(crashes[0].message.contains("root context"), "{:?}", crashes[0]);
        assert_eq!(sim.outcome(paused), Outcome::Reset, "{action}: the worker's connections are closed");
        // The worker is respawned: a fresh VM configured again, serving requests.
        assert_eq!(messages(&sim, "on_configure").len(), 2, "{action}");
        let s = sim.send(0, Request::get("/"));
        assert!(sim.outcome(s).is_forwarded(), "{action}: {:?}", sim.outcome(s));
    }
    // The same filter on Envoy: set_effective_context retargets the root's hostcalls, nothing crashes.
    let mut sim = host_probe().plugin_config("tick=10;tick_action=local").build().unwrap();
    let paused = sim.send(0, Request::get("/pause-for-root"));
    sim.advance(Duration::from_millis(10));
    assert_eq!(sim.outcome(paused).status(), Some(403));
}

#[test]
#[should_panic(expected = "nginx worker crash(es) that no test took")]
fn a_crash_no_test_takes_fails_the_test() {
    let mut sim = nginx().plugin_config("no_queue;tick=10;tick_action=resume").build().unwrap();
    sim.send(0, Request::get("/pause-for-root"));
    sim.advance(Duration::from_millis(10));
    assert_eq!(sim.host_crashes().len(), 1);
}

// ---- 3. who may dispatch ---------------------------------------------------------------------------------------

#[test]
fn the_root_may_dispatch_from_a_tick_but_not_from_its_own_call_response() {
    let target = || Cluster::scripted(|_| CalloutReply::ok(200).after(Duration::from_millis(2)));
    let mut sim = nginx().plugin_config("no_queue;tick=10;root_dispatch=idp:80").cluster("idp:80", target()).build().unwrap();
    sim.advance(Duration::from_millis(20));
    assert_eq!(messages(&sim, "root callout_response"), vec!["root callout_response token=0 headers=1 dispatch_status=Some(\"ok\")"]);
    for (then, hostcall) in [("chain", "proxy_http_call"), ("local", "proxy_send_local_response"), ("resume", "proxy_continue_stream")] {
        let config = format!("no_queue;tick=10;root_dispatch=idp:80;root_then={then}");
        let mut sim = nginx().plugin_config(config).cluster("idp:80", target()).build().unwrap();
        sim.advance(Duration::from_millis(20));
        let crashes = sim.take_host_crashes();
        assert_eq!(crashes.len(), 1, "{then}");
        assert_eq!((crashes[0].hostcall.as_str(), crashes[0].function.as_str()), (hostcall, "proxy_on_http_call_response"));
    }
}

#[test]
fn a_dispatch_outside_the_allowed_steps_traps() {
    let mut sim = nginx().cluster("idp:80", Cluster::scripted(|_| CalloutReply::ok(200))).build().unwrap();
    let s = sim.send(0, Request::get("/dispatch-in-response/idp:80"));
    assert!(sim.traps()[0].message.contains("can only send HTTP dispatch during"), "{:?}", sim.traps());
    // A trap in the response path lets the response through.
    assert!(sim.outcome(s).is_forwarded(), "{:?}", sim.outcome(s));
    assert!(sim.callouts().is_empty());
    // A request's own call-response callback may chain calls.
    let mut sim = nginx().cluster("idp:80", Cluster::scripted(|_| CalloutReply::ok(200))).build().unwrap();
    let s = sim.send(0, Request::get("/callout-chain/idp:80/3/resume"));
    assert!(sim.outcome(s).is_forwarded(), "{:?}", sim.outcome(s));
    assert_eq!(sim.callouts().len(), 3);
}

// ---- 4. auto-resume, and a Pause without a call ---------------------------------------------------------------

#[test]
fn a_request_goes_on_after_its_last_call_whatever_the_callback_did() {
    let delayed = || Cluster::scripted(|_| CalloutReply::ok(200).after(Duration::from_millis(5)));
    let mut sim = nginx().cluster("idp:80", delayed()).build().unwrap();
    let idle = sim.send(0, Request::get("/callout-idle/idp:80"));
    let cont = sim.send(0, Request::get("/callout-continue/idp:80"));
    assert!(sim.outcome(idle).is_paused() && sim.outcome(cont).is_paused(), "a dispatch forces a pause, even after Continue");
    sim.advance(Duration::from_millis(5));
    assert!(sim.outcome(idle).is_forwarded(), "{:?}", sim.outcome(idle));
    assert!(sim.outcome(cont).is_forwarded(), "{:?}", sim.outcome(cont));
    // Envoy leaves a request paused until the filter continues it.
    let mut sim = host_probe().cluster("idp", delayed()).build().unwrap();
    let idle = sim.send(0, Request::get("/callout-idle/idp").header("x-authority", "idp"));
    sim.advance(Duration::from_millis(50));
    assert!(sim.outcome(idle).is_paused());
}

#[test]
fn a_pause_without_a_call_hangs_and_its_body_never_comes() {
    let mut sim = nginx().build().unwrap();
    let s = sim.send(0, Request::post("/pause").body("payload"));
    sim.advance(Duration::from_secs(60));
    assert!(sim.outcome(s).is_paused());
    assert!(messages(&sim, "request_body").is_empty(), "the content phase is never reached");
}

// ---- 5. request header writes ---------------------------------------------------------------------------------

fn headers_case(ops: &str, sent: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let mut sim = nginx().build().unwrap();
    let mut request = Request::get(format!("/hdr?do={ops}"));
    for (k, v) in sent {
        request = request.header(*k, *v);
    }
    let s = sim.send(0, request);
    let outcome = sim.outcome(s);
    let upstream = outcome.upstream_request().unwrap_or_else(|| panic!("{ops}: {outcome:?}"));
    // The client's Host line is nginx's too; `map` hides it like any other (the real proxy then sends it twice).
    let lines = upstream.headers.iter().filter(|(k, _)| !k.starts_with(':') && k != "host").cloned().collect();
    (trace(&outcome), lines)
}

fn lines(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn removed_request_headers_are_hidden_from_the_filter_but_still_sent() {
    let (trace, sent) = headers_case("rm:x-a", &[("x-a", "1"), ("x-b", "2")]);
    assert_eq!(trace, "headers(eos=false) get(x-a)=1 pairs=[x-b=2]");
    assert_eq!(sent, lines(&[("x-a", "1"), ("x-b", "2")]));
    // Authorization and Cookie (built-in headers) alike.
    let (trace, sent) = headers_case("rm:authorization;rm:cookie", &[("authorization", "Bearer t"), ("cookie", "s=1")]);
    assert_eq!(trace, "headers(eos=false) get(authorization)=Bearer t get(cookie)=s=1 pairs=[]");
    assert_eq!(sent, lines(&[("authorization", "Bearer t"), ("cookie", "s=1")]));
}

#[test]
fn replace_updates_in_place_and_blank_sends_an_empty_header() {
    let (_, sent) = headers_case("set:x-a:v", &[("x-a", "1"), ("x-b", "2")]);
    assert_eq!(sent, lines(&[("x-a", "v"), ("x-b", "2")]));
    let (_, sent) = headers_case("set:x-a:", &[("x-a", "1")]);
    assert_eq!(sent, lines(&[("x-a", "")]));
    let (_, sent) = headers_case("set:x-new:1", &[]);
    assert_eq!(sent, lines(&[("x-new", "1")]));
    // A header the client sent twice: both copies are hidden (the first with the new value), both still sent.
    let (trace, sent) = headers_case("set:x-a:v", &[("x-a", "1"), ("x-a", "2")]);
    assert_eq!(trace, "headers(eos=false) get(x-a)=v pairs=[]");
    assert_eq!(sent, lines(&[("x-a", "v"), ("x-a", "2")]));
}

#[test]
fn remove_then_set_sends_two_lines_and_setting_the_whole_map_changes_nothing() {
    let (trace, sent) = headers_case("rm:x-a;set:x-a:new", &[("x-a", "1")]);
    assert_eq!(trace, "headers(eos=false) get(x-a)=1 pairs=[x-a=new]", "the getter finds the hidden line first");
    assert_eq!(sent, lines(&[("x-a", "1"), ("x-a", "new")]));
    // Authorization's pointer revives the one line instead.
    let (_, sent) = headers_case("rm:authorization;set:authorization:Basic x", &[("authorization", "Bearer t")]);
    assert_eq!(sent, lines(&[("authorization", "Basic x")]));
    let (trace, sent) = headers_case("map:x-new:1", &[("x-a", "1")]);
    assert_eq!(trace, "headers(eos=false) get(x-new)=- pairs=[]");
    assert_eq!(sent, lines(&[("x-a", "1")]), "the original headers go unchanged, the new one is absent");
}

#[test]
fn proxy_set_header_lines_send_vigils_value_and_drop_blanked_headers() {
    let sim = || nginx().proxy_set_header("Authorization", "$http_authorization").proxy_set_header("x-a", "$http_x_a");
    let mut s = sim().build().unwrap();
    let id = s.send(0, Request::get("/hdr?do=set:authorization:;set:x-a:mine").header("authorization", "Bearer t").header("x-a", "spoof"));
    let upstream = s.outcome(id).upstream_request().cloned().unwrap();
    let sent: Vec<_> = upstream.headers.into_iter().filter(|(k, _)| !k.starts_with(':') && k != "host").collect();
    assert_eq!(sent, lines(&[("x-a", "mine")]), "a blanked header is dropped by its proxy_set_header line");
}

// ---- 6. bodies --------------------------------------------------------------------------------------------------

#[test]
fn the_body_comes_once_whole_in_the_content_phase() {
    let mut sim = nginx().cluster("idp:80", Cluster::scripted(|_| CalloutReply::ok(200).after(Duration::from_millis(5)))).build().unwrap();
    let get = sim.send(0, Request::get("/"));
    assert_eq!(trace(&sim.outcome(get)), "headers(eos=false)", "no body: no body callback");
    let post = sim.send(0, Request::post("/").body("abc").body("defg"));
    assert_eq!(trace(&sim.outcome(post)), "headers(eos=false) body(7,eos=true)");
    assert_eq!(sim.outcome(post).upstream_request().unwrap().body, b"abcdefg");
    // After a call the request went on from: its body follows.
    let waited = sim.send(0, Request::post("/callout-idle/idp:80").body("abc"));
    assert!(messages(&sim, "request_body size=3").is_empty());
    sim.advance(Duration::from_millis(5));
    assert_eq!(trace(&sim.outcome(waited)), "headers(eos=false) call(1,ok) body(3,eos=true)");
    // Envoy: end_of_stream on the headers of a bodyless request, one callback per chunk.
    let mut sim = host_probe().build().unwrap();
    let post = sim.send(0, Request::post("/").body("abc").body("defg"));
    assert_eq!(trace(&sim.outcome(post)), "headers(eos=false) body(3,eos=false) body(4,eos=true)");
    let get = sim.send(0, Request::get("/"));
    assert_eq!(trace(&sim.outcome(get)), "headers(eos=true)");
}

// ---- 7. callouts: targets and failures --------------------------------------------------------------------------

fn callout_status(reply: CalloutReply, target: &str) -> String {
    let mut sim = nginx().cluster("idp.test:443", Cluster::scripted(move |_| reply.clone())).build().unwrap();
    // Without a call body: one timed-out call with a body would make the local reply abort the worker (8).
    let s = sim.send(0, Request::get(format!("/callout-status/{target}")).header("x-timeout-ms", "100").header("x-no-body", "1"));
    sim.advance(Duration::from_millis(100));
    sim.outcome(s).reply().unwrap_or_else(|| panic!("{:?}", sim.outcome(s))).body_str().trim_end().to_string()
}

#[test]
fn a_failed_callout_has_only_dispatch_status() {
    let ok = CalloutReply::ok(200).header("x", "1").body("hi");
    assert_eq!(callout_status(ok, "idp.test:443"), "n=2 [:status=200,:dispatch_status=ok,x=1,content-length=2]");
    let cases = [
        (CalloutReply::no_answer(), "timeout"),
        (CalloutReply::fail(CallFailure::Timeout), "timeout"),
        (CalloutReply::reset(), "broken connection"),
        (CalloutReply::connect_failure(), "broken connection"),
        (CalloutReply::fail(CallFailure::TlsHandshake), "tls handshake failure"),
        (CalloutReply::fail(CallFailure::Resolver), "resolver failure"),
        (CalloutReply::fail(CallFailure::Reader), "reader failure"),
    ];
    for (reply, status) in cases {
        assert_eq!(callout_status(reply, "idp.test:443"), format!("n=0 [:dispatch_status={status}]"));
    }
    // Targets nobody answers for: a name does not resolve, an address refuses.
    assert_eq!(callout_status(CalloutReply::ok(200), "nowhere.test:80"), "n=0 [:dispatch_status=resolver failure]");
    assert_eq!(callout_status(CalloutReply::ok(200), "127.0.0.1:1"), "n=0 [:dispatch_status=broken connection]");
}

#[test]
fn callout_targets_are_host_port_and_the_authority_defaults_to_it() {
    let mut sim = nginx().cluster("idp.local:8443", Cluster::scripted(|_| CalloutReply::ok(200))).build().unwrap();
    sim.send(0, Request::get("/callout-idle/idp.local:8443"));
    sim.send(0, Request::get("/callout-idle/idp.local:8443").header("x-timeout-ms", "0"));
    let calls = sim.callouts();
    assert_eq!((calls[0].token, calls[1].token), (0, 1), "tokens from 0");
    assert_eq!(calls[0].header(":authority"), Some("idp.local:8443"));
    assert_eq!(calls[1].timeout, Some(Duration::from_secs(60)), "timeout 0: the 60 s socket default");
    // A dispatch without :path fails in the hostcall: from a request, a trap.
    assert!(sim.callouts().iter().all(|c| c.path() == "/probe"));
}

// ---- 8. the timed-out-dispatch local-reply abort -----------------------------------------------------------------

#[test]
fn timed_out_calls_poison_the_request_local_reply_aborts_and_a_new_call_spins() {
    let run = |path: &str, body: bool| {
        let mut sim = nginx().cluster("idp:80", Cluster::scripted(|_| CalloutReply::no_answer())).build().unwrap();
        let mut request = Request::get(path).header("x-timeout-ms", "100");
        if !body {
            request = request.header("x-no-body", "1");
        }
        let s = sim.send(0, request);
        sim.advance(Duration::from_millis(400));
        (sim.outcome(s), sim.take_host_crashes())
    };
    // Calls without a body: two timeouts in a row, then a local reply, abort the worker.
    let (outcome, crashes) = run("/callout-chain/idp:80/2/local", false);
    assert_eq!(outcome, Outcome::Reset);
    assert_eq!(crashes.len(), 1);
    assert_eq!(crashes[0].hostcall, "proxy_send_local_response");
    assert!(crashes[0].message.contains("zero size buf"), "{crashes:?}");
    let (outcome, crashes) = run("/callout-chain/idp:80/1/local", false);
    assert_eq!((outcome.status(), crashes.len()), (Some(200), 0), "one timeout, then a local reply: fine");
    let (outcome, crashes) = run("/callout-chain/idp:80/3/resume", false);
    assert!(outcome.is_forwarded() && crashes.is_empty(), "timeouts, then a resume: fine: {outcome:?}");
    // A call with a body: one timeout is enough, and a further call from that request spins the worker.
    let (_, crashes) = run("/callout-chain/idp:80/1/local", true);
    assert_eq!(crashes.iter().map(|c| c.hostcall.as_str()).collect::<Vec<_>>(), ["proxy_send_local_response"]);
    let (_, crashes) = run("/callout-chain/idp:80/2/resume", true);
    assert_eq!(crashes.iter().map(|c| c.hostcall.as_str()).collect::<Vec<_>>(), ["proxy_http_call"]);
    assert!(crashes[0].message.contains("send() returned zero"), "{crashes:?}");
    let (outcome, crashes) = run("/callout-chain/idp:80/1/resume", true);
    assert!(outcome.is_forwarded() && crashes.is_empty(), "{outcome:?}");
}

// ---- 9. local replies ---------------------------------------------------------------------------------------------

#[test]
fn local_reply_headers_replace_each_other_and_response_callbacks_run() {
    let mut sim = nginx().build().unwrap();
    let s = sim.send(0, Request::get("/local-cookies"));
    let reply = sim.outcome(s).reply().cloned().unwrap();
    assert_eq!(reply.header_values("set-cookie"), ["b=2"], "only the last of two set-cookie");
    assert_eq!(reply.body_str(), "cookies\n", "ngx_wasm_module appends a newline");
    assert_eq!(reply.header("x-probe-response"), Some("200"), "on_http_response_headers ran for it");
    let s = sim.send(0, Request::get("/local-cookies-late"));
    assert_eq!(sim.outcome(s).reply().unwrap().header_values("set-cookie"), ["b=2", "c=3"], "added there: one more line");
    // Envoy keeps both.
    let mut sim = host_probe().build().unwrap();
    let s = sim.send(0, Request::get("/local-cookies"));
    assert_eq!(sim.outcome(s).reply().unwrap().header_values("set-cookie"), ["a=1", "b=2"]);
}

#[test]
fn a_second_local_reply_traps_and_one_from_response_headers_keeps_the_headers() {
    let mut sim = nginx().build().unwrap();
    let s = sim.send(0, Request::get("/local-twice"));
    assert_eq!(sim.outcome(s).status(), Some(500));
    assert!(sim.traps()[0].message.contains("local response already stashed"));
    let s = sim.send(0, Request::get("/local-in-response"));
    let reply = sim.outcome(s).reply().cloned().unwrap();
    assert_eq!((reply.status, reply.body_str().as_str()), (418, "late\n"));
    assert_eq!(reply.header("content-length"), Some("11"), "the upstream's length stays (the client would hang)");
}

// ---- 10. queues and ticks ------------------------------------------------------------------------------------------

#[test]
fn registering_an_undeclared_queue_traps_on_nginx() {
    let result = host_probe().profile(Profile::Nginx).shm_queue("other").build();
    match result {
        Err(SimError::Trap { message, .. }) => assert!(message.contains("could not find queue"), "{message}"),
        other => panic!("expected a start trap, got {other:?}"),
    }
    // A kv zone is no queue.
    let result = host_probe().profile(Profile::Nginx).shm_kv("q", None, ShmEviction::None).build();
    assert!(matches!(result, Err(SimError::Trap { ref message, .. }) if message.contains("key/value shm store as a queue")), "{result:?}");
    // Envoy creates any queue on registration.
    assert!(host_probe().build().is_ok());
}

#[test]
fn no_queue_notifications_and_resolve_traps() {
    let mut sim = host_probe().profile(Profile::Nginx).shm_queue("q").workers(2).build().unwrap();
    assert_eq!(messages(&sim, "queue token=").len(), 2, "two workers, no main VM, no canary");
    assert!(messages(&sim, "queue token=1 ").len() == 2, "the token is the zone's index (after the default `*`)");
    assert_eq!(body(&mut sim, "/enqueue/a"), "enqueue Ok(())\n");
    assert!(sim.logs_containing("queue_ready").is_empty());
    assert_eq!(sim.queue_len("q"), Some(1));
    let s = sim.send(0, Request::get("/resolve"));
    assert_eq!(sim.outcome(s).status(), Some(500));
    assert!(sim.traps()[0].message.contains("proxy_resolve_shared_queue"));
}

#[test]
fn ticks_are_per_worker_root_only_and_set_once() {
    let mut sim = nginx().plugin_config("no_queue;tick=10").workers(2).build().unwrap();
    sim.advance(Duration::from_millis(10));
    let ticked: Vec<VmRef> = sim.logs_containing("tick at=").iter().map(|l| l.vm).collect();
    assert_eq!(ticked, vec![VmRef::Worker(0), VmRef::Worker(1)]);
    let s = sim.send(0, Request::get("/tick-from-stream"));
    assert_eq!(sim.outcome(s).status(), Some(500));
    assert!(sim.traps()[0].message.contains("can only set tick_period in root context"));
    match nginx().plugin_config("no_queue;tick=10;tick_twice").build() {
        Err(SimError::Trap { message, .. }) => assert!(message.contains("tick_period already set"), "{message}"),
        other => panic!("{other:?}"),
    }
}

// ---- 11. traps -----------------------------------------------------------------------------------------------------

#[test]
fn a_trap_is_a_500_and_the_next_request_gets_a_fresh_instance() {
    let mut sim = nginx().workers(2).build().unwrap();
    let s = sim.send(0, Request::get("/trap"));
    assert_eq!(sim.outcome(s), Outcome::FailedVm(host_sim::Reply::new(500)));
    assert_eq!(sim.logs_on(0).iter().filter(|l| l.message.starts_with("on_configure")).count(), 1);
    let later = sim.send(0, Request::get("/"));
    assert!(sim.outcome(later).is_forwarded(), "no failure policy: a new instance serves it");
    assert_eq!(sim.logs_on(0).iter().filter(|l| l.message.starts_with("on_configure")).count(), 2, "on_configure re-ran");
    assert!(sim.host_crashes().is_empty());
}

// ---- the rest ------------------------------------------------------------------------------------------------------

#[test]
fn get_status_is_unsupported_and_context_ids_are_large() {
    let mut sim = nginx().cluster("idp:1", Cluster::scripted(|_| CalloutReply::reset())).build().unwrap();
    let s = sim.send(0, Request::get("/"));
    assert!(sim.context_id(s) > 1_000_000);
    sim.send(0, Request::get("/callout/idp:1").header("x-get-status", "1"));
    assert!(sim.traps()[0].message.contains("proxy_get_status"), "{:?}", sim.traps());
}
