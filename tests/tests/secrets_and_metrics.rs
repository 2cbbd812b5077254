//! No secret reaches a log line or an error body, whatever the IdP answers;
//! and the documented metrics move as the README says.

use host_sim::{Outcome, Request};
use serde_json::json;
use std::time::Duration;
use vigil_tests::fixture::{user, Fixture, Login};
use vigil_tests::on_both_profiles;
use vigil_tests::idp::{Fault, CLIENT_SECRET, TOKEN_PATH, USERINFO_PATH};

const INTERVAL: Duration = Duration::from_secs(61);

fn due(f: &mut Fixture, login: &Login, vm: usize) -> Outcome {
    let s = f.get(vm, &login.token);
    f.advance(Duration::from_secs(11));
    f.sim.outcome(s)
}

/// A hostile or buggy IdP that echoes what it was sent in its error bodies.
fn echoing(body: String) -> &'static str {
    Box::leak(body.into_boxed_str())
}

fn body_of(outcome: &Outcome) -> String {
    match outcome {
        Outcome::LocalReply(reply) => reply.body_str().to_string(),
        _ => String::new(),
    }
}

on_both_profiles! {
    fn no_token_secret_or_cookie_appears_in_any_log_line_or_reply(profile: Profile) {
        let mut f = Fixture::on(profile, json!({ "on_failure": "allow" }));
        f.idp.set_access_ttl(20);
        let alice = f.login(user("alice"));
        let bob = f.login(user("bob"));
        let carol = f.login(user("carol"));
        let mut replies = Vec::new();

        // Success with a rotation, then every kind of failure, on several VMs.
        f.advance(INTERVAL);
        replies.push(due(&mut f, &alice, 0));
        let secrets_so_far = f.idp.issued_secrets().join(" ");
        f.advance(INTERVAL);
        f.idp.inject(TOKEN_PATH, Fault::Status(400, echoing(format!("{{\"error\":\"invalid_request\",\"error_description\":\"{secrets_so_far} {CLIENT_SECRET}\"}}"))), 1);
        replies.push(due(&mut f, &alice, 1));
        f.idp.inject(USERINFO_PATH, Fault::Status(500, echoing(format!("upstream said {secrets_so_far}"))), 1);
        replies.push(due(&mut f, &bob, 2));
        f.idp.inject(TOKEN_PATH, Fault::Hang, 1);
        replies.push(due(&mut f, &carol, 3));
        f.advance(INTERVAL);
        f.idp.deprovision("alice");
        replies.push(due(&mut f, &alice, 0));
        f.idp.inject(USERINFO_PATH, Fault::Reset, 1);
        replies.push(due(&mut f, &bob, 1));
        // Malformed and revoked tokens, in the header and in the cookie.
        let tampered = format!("{}x", carol.token);
        for (name, value) in [
            ("authorization", format!("Bearer {tampered}")),
            ("cookie", format!("vigil_session={tampered}")),
            ("authorization", format!("Bearer {}", alice.token)),
            ("cookie", format!("vigil_session={}", alice.token)),
        ] {
            let s = f.sim.send(0, Request::get("/api").header(name, value));
            replies.push(f.sim.outcome(s));
        }
        assert!(f.idp.refresh_calls() >= 2, "the scenario must have rotated refresh tokens");

        let mut secrets = f.idp.issued_secrets();
        secrets.push(CLIENT_SECRET.to_string());
        for login in [&alice, &bob, &carol] {
            secrets.push(login.token.clone());
            // The signature alone is enough to replay nothing, but it is part of the cookie.
            if let Some(signature) = login.token.rsplit('.').next() {
                secrets.push(signature.to_string());
            }
        }
        secrets.push(tampered);
        assert!(!f.sim.logs().is_empty(), "the scenario must have logged something to check");
        for secret in &secrets {
            let leaked = f.sim.logs_containing(secret);
            assert!(leaked.is_empty(), "a secret reached the log: {leaked:?}");
            for reply in &replies {
                assert!(!body_of(reply).contains(secret.as_str()), "a secret reached a reply body: {reply:?}");
            }
        }
        // The client secret in its Basic form must not leak either.
        for reply in &replies {
            if let Outcome::LocalReply(r) = reply {
                assert!(r.headers.iter().all(|(_, v)| !v.contains(CLIENT_SECRET)), "{r:?}");
            }
        }
    }
}

on_both_profiles! {
    fn metrics_count_what_the_readme_says(profile: Profile) {
        let mut f = Fixture::on(profile, json!({ "on_failure": "allow" }));
        f.idp.set_access_ttl(20);
        f.idp.set_latency(Duration::from_millis(30));
        let alice = f.login(user("alice"));
        // Fresh: skipped.
        assert!(matches!(f.get_outcome(0, &alice.token), Outcome::Forwarded { .. }));
        assert_eq!(f.sim.metric("vigil.revalidation.skipped"), Some(1));
        // Due, with two followers on other VMs: one started, one refresh, coalesced 2.
        f.advance(INTERVAL);
        let streams: Vec<_> = (0..3).map(|vm| f.get(vm, &alice.token)).collect();
        f.advance(Duration::from_secs(1));
        for s in streams {
            assert!(matches!(f.sim.outcome(s), Outcome::Forwarded { .. }));
        }
        assert_eq!(f.sim.metric("vigil.revalidation.started"), Some(1));
        assert_eq!(f.sim.metric("vigil.revalidation.succeeded"), Some(1));
        assert_eq!(f.sim.metric("vigil.revalidation.refresh"), Some(1));
        assert_eq!(f.sim.metric("vigil.revalidation.coalesced"), Some(2));
        // IdP latency: one sample per call (refresh + userinfo), in milliseconds.
        let samples = f.sim.metric_samples("vigil.idp.latency_ms");
        assert_eq!(samples.len(), 2, "{samples:?}");
        assert!(samples.iter().all(|ms| (30..=40).contains(ms)), "{samples:?}");
        // A non-fatal failure allowed, then a fatal one.
        f.advance(INTERVAL);
        f.idp.inject(USERINFO_PATH, Fault::Status(503, ""), 1);
        assert!(matches!(due(&mut f, &alice, 0), Outcome::Forwarded { .. }));
        assert_eq!(f.sim.metric("vigil.revalidation.nonfatal_allowed"), Some(1));
        f.advance(INTERVAL);
        f.idp.deprovision("alice");
        assert_eq!(due(&mut f, &alice, 1).status(), Some(401));
        assert_eq!(f.sim.metric("vigil.revalidation.fatal"), Some(1));
        assert_eq!(f.sim.metric("vigil.revocations"), Some(1));
        assert_eq!(f.get_outcome(2, &alice.token).status(), Some(401));
        // The request that got the fatal answer and the later one.
        assert_eq!(f.sim.metric("vigil.revoked_rejected"), Some(2));
        // Bad tokens and unknown sessions.
        assert_eq!(f.get_outcome(0, "not-a-jwt").status(), Some(401));
        assert_eq!(f.sim.metric("vigil.token_invalid"), Some(1));
    }
}
