use serde_json::{json, Value};

use super::*;
use crate::login::authorize::authorization_redirect;
use crate::login::fetch::{FetchStep, Fetcher};
use crate::login::form::parse;
use crate::login::testkeys::{discovery_json, login_config, ok_json, TestIdpKeys, ISSUER};
use crate::revalidation::testing::seq_entropy as seq_random;
use crate::store::MemoryStore;
use crate::token::Verifier;

const NOW: u64 = 1_800_000_000 * 1_000_000_000;

struct World {
    cfg: Config,
    store: MemoryStore,
    idp: TestIdpKeys,
    provider: Provider,
    signer: Signer,
    logins: std::cell::Cell<u64>,
}

impl World {
    fn new() -> World {
        let cfg = login_config();
        let store = MemoryStore::new();
        let idp = TestIdpKeys::new();
        let mut fetcher = Fetcher::new();
        fetcher.poll(&cfg, &store, "vm", NOW).unwrap();
        let FetchStep::Call(_) =
            fetcher.on_answer(&cfg, &store, "vm", NOW, &ok_json(&discovery_json()))
        else {
            panic!()
        };
        fetcher.on_answer(&cfg, &store, "vm", NOW, &ok_json(&idp.jwks_json()));
        let mut provider = Provider::new();
        provider.sync(&store, &cfg);
        assert!(provider.ready().is_some());
        let signer = cfg.login.as_ref().unwrap().signing_key.signer().unwrap();
        World {
            cfg,
            store,
            idp,
            provider,
            signer,
            logins: std::cell::Cell::new(0),
        }
    }

    fn ctx(&self) -> LoginContext<'_> {
        LoginContext {
            cfg: &self.cfg,
            login: self.cfg.login.as_ref().unwrap(),
            signer: &self.signer,
        }
    }

    /// Starts a login for `/app?x=1`: (state cookie value, state, nonce).
    fn begin(&self) -> (String, String, String) {
        let (metadata, _) = self.provider.ready().unwrap();
        self.logins.set(self.logins.get() + 1);
        let mut random = seq_random(self.logins.get());
        let reply = authorization_redirect(
            &self.cfg,
            self.ctx().login,
            metadata,
            "/app?x=1",
            &mut random,
            NOW,
        )
        .unwrap();
        let location = &reply
            .headers
            .iter()
            .find(|(k, _)| *k == "location")
            .unwrap()
            .1;
        let q = parse(location.split_once('?').unwrap().1);
        let get = |k: &str| q.iter().find(|(n, _)| n == k).unwrap().1.clone();
        let cookie = &reply
            .headers
            .iter()
            .find(|(k, _)| *k == "set-cookie")
            .unwrap()
            .1;
        let value = cookie
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_string();
        (value, get("state"), get("nonce"))
    }

    fn callback_request(&self, cookie: &str, query: &str) -> RequestView {
        RequestView::new(
            "GET",
            &format!("/callback?{query}"),
            vec![(
                "cookie".into(),
                format!("other=1; vigil_session_login={cookie}"),
            )],
        )
    }

    fn id_token(&self, nonce: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = json!({
            "iss": ISSUER, "aud": "vigil client", "sub": "alice",
            "exp": NOW / 1_000_000_000 + 300, "iat": NOW / 1_000_000_000, "nonce": nonce
        });
        edit(&mut claims);
        self.idp.sign("ES256", &claims)
    }

    fn session_keys(&self) -> usize {
        self.store.keys_with_prefix("vigil:s:").len()
    }
}

fn token_answer(id_token: &str) -> IdpAnswer {
    ok_json(
        &json!({
            "access_token": "at-1", "refresh_token": "rt-1", "expires_in": 300,
            "token_type": "Bearer", "id_token": id_token
        })
        .to_string(),
    )
}

fn userinfo(sub: &str) -> IdpAnswer {
    ok_json(&json!({"sub": sub, "email": "alice@example.com", "groups": ["staff"]}).to_string())
}

fn done(step: CallbackStep) -> CallbackDone {
    match step {
        CallbackStep::Done(done) => done,
        CallbackStep::Call(call) => panic!("unexpected call {call:?}"),
    }
}

fn err(result: Result<(Callback, IdpRequest), CallbackDone>) -> LoginError {
    match result {
        Err(done) => {
            assert!(done.reply.status >= 400);
            done.result.unwrap_err()
        }
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn the_whole_callback_creates_a_session_and_sets_a_verifiable_cookie() {
    let w = World::new();
    let (cookie, state, nonce) = w.begin();
    let req = w.callback_request(
        &cookie,
        &format!(
            "code=c0de&state={state}&iss={}",
            crate::login::form::encode(ISSUER)
        ),
    );
    let (mut cb, call) = Callback::start(&w.ctx(), &w.provider, &w.store, &req, NOW).unwrap();
    let body = String::from_utf8(call.body.clone()).unwrap();
    assert!(
        body.contains("grant_type=authorization_code") && body.contains("code=c0de"),
        "{body}"
    );
    assert!(
        body.contains("code_verifier=")
            && body.contains("redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback")
    );
    let mut random = seq_random(5);
    let step = cb.on_answer(
        &w.ctx(),
        &w.provider,
        &w.store,
        &token_answer(&w.id_token(&nonce, |_| {})),
        &mut random,
        NOW,
    );
    let CallbackStep::Call(userinfo_call) = step else {
        panic!("{step:?}")
    };
    assert_eq!(userinfo_call.kind, LoginCallKind::Userinfo);
    assert!(userinfo_call
        .headers
        .contains(&("authorization".into(), "Bearer at-1".into())));
    let finished = done(cb.on_answer(
        &w.ctx(),
        &w.provider,
        &w.store,
        &userinfo("alice"),
        &mut random,
        NOW + 5,
    ));
    let logged_in = finished.result.clone().unwrap();
    assert_eq!(logged_in.sub, "alice");
    let reply = finished.reply;
    assert_eq!(reply.status, 302);
    assert!(reply
        .headers
        .contains(&("location", "/app?x=1".to_string())));
    let cookies: Vec<&String> = reply
        .headers
        .iter()
        .filter(|(k, _)| *k == "set-cookie")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(cookies.len(), 2);
    assert!(
        cookies[0].starts_with("vigil_session=")
            && cookies[0].contains("HttpOnly")
            && cookies[0].contains("SameSite=Lax")
    );
    assert!(cookies[1].starts_with("vigil_session_login=;") && cookies[1].contains("Max-Age=0"));
    let token = cookies[0]
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    let claims = Verifier::new(&w.cfg.downstream)
        .verify(token, NOW + 10)
        .unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.extra.get("email"), Some(&json!("alice@example.com")));
    assert!(claims.iat_ns >= NOW + 5);
    let sid = crate::session::parse_sid(&claims.sid, w.cfg.max_sessions).unwrap();
    assert_eq!(sid.slot, logged_in.slot);
    let (record, _) =
        crate::session::read_session(&w.store, &crate::session::session_key("vigil:", sid.slot))
            .unwrap();
    assert_eq!(
        (
            record.access_token.as_str(),
            record.refresh_token.as_deref()
        ),
        ("at-1", Some("rt-1"))
    );
    assert_eq!(record.access_expires_ns, NOW + 5 + 300 * 1_000_000_000);
    assert_eq!(record.expires_ns, NOW + 5 + 8 * 3600 * 1_000_000_000);
    // Replaying the same callback is refused before the IdP is called.
    assert_eq!(
        err(Callback::start(
            &w.ctx(),
            &w.provider,
            &w.store,
            &req,
            NOW + 6
        )),
        LoginError::StateReplayed
    );
}

#[test]
fn bad_callbacks_are_refused_before_any_idp_call() {
    let w = World::new();
    let (cookie, state, _) = w.begin();
    let start = |req: &RequestView| Callback::start(&w.ctx(), &w.provider, &w.store, req, NOW);
    let q = |extra: &str| format!("code=c&state={state}{extra}");
    // No state cookie.
    let bare = RequestView::new("GET", &format!("/callback?{}", q("")), vec![]);
    assert_eq!(err(start(&bare)), LoginError::StateMissing);
    // Tampered cookie.
    let mut tampered = cookie.clone();
    tampered.insert(3, 'x');
    assert_eq!(
        err(start(&w.callback_request(&tampered, &q("")))),
        LoginError::StateMismatch
    );
    // Another login's state.
    assert_eq!(
        err(start(&w.callback_request(&cookie, "code=c&state=other"))),
        LoginError::StateMismatch
    );
    assert_eq!(
        err(start(&w.callback_request(&cookie, "code=c"))),
        LoginError::StateMismatch
    );
    // Repeated parameters, missing code, wrong iss, IdP errors.
    assert!(matches!(
        err(start(&w.callback_request(&cookie, &q("&code=d")))),
        LoginError::MissingParameter(_)
    ));
    assert!(matches!(
        err(start(
            &w.callback_request(&cookie, &format!("state={state}"))
        )),
        LoginError::MissingParameter(_)
    ));
    assert_eq!(
        err(start(
            &w.callback_request(&cookie, &q("&iss=https%3A%2F%2Fevil"))
        )),
        LoginError::IssuerMismatch
    );
    let denied = start(&w.callback_request(
        &cookie,
        &format!("error=access_denied&error_description=%3Cscript%3E&state={state}"),
    ));
    let Err(done) = denied else { panic!() };
    assert_eq!(done.reply.status, 403);
    assert!(!String::from_utf8_lossy(&done.reply.body).contains("script"));
    assert!(done
        .reply
        .headers
        .iter()
        .any(|(k, v)| *k == "set-cookie" && v.contains("Max-Age=0")));
    assert_eq!(
        err(start(&w.callback_request(
            &cookie,
            &format!("error=server_error&state={state}")
        ))),
        LoginError::IdpRefused {
            access_denied: false
        }
    );
    // Expired state.
    let late = Callback::start(
        &w.ctx(),
        &w.provider,
        &w.store,
        &w.callback_request(&cookie, &q("")),
        NOW + 601 * 1_000_000_000,
    );
    assert_eq!(err(late), LoginError::StateMissing);
    // POST is not a callback.
    let post = RequestView {
        method: "POST".into(),
        ..w.callback_request(&cookie, &q(""))
    };
    assert_eq!(err(start(&post)), LoginError::MethodNotAllowed);
    // Before discovery: 503, nothing consumed.
    let cold = Provider::new();
    let r = Callback::start(
        &w.ctx(),
        &cold,
        &w.store,
        &w.callback_request(&cookie, &q("")),
        NOW,
    );
    assert!(matches!(err(r), LoginError::NotReady { .. }));
    assert!(start(&w.callback_request(&cookie, &q(""))).is_ok());
    assert_eq!(w.session_keys(), 0);
}

#[test]
fn bad_answers_create_no_session() {
    let w = World::new();
    type TokenAnswer = Box<dyn Fn(&World, &str) -> IdpAnswer>;
    let cases: Vec<(TokenAnswer, Option<IdpAnswer>, LoginError)> = vec![
        (
            Box::new(|_, _| ok_json(r#"{"error":"invalid_grant"}"#)),
            None,
            LoginError::CodeRejected,
        ),
        (
            Box::new(|_, _| IdpAnswer::Timeout),
            None,
            LoginError::TokenEndpointFailed,
        ),
        (
            Box::new(|_, _| ok_json(r#"{"access_token":"a"}"#)),
            None,
            LoginError::InvalidIdToken("the token answer has no id token"),
        ),
        (
            Box::new(|w, _| token_answer(&w.id_token("wrong", |_| {}))),
            None,
            LoginError::InvalidIdToken("id token nonce does not match"),
        ),
        (
            Box::new(|w, n| token_answer(&w.id_token(n, |c| c["aud"] = json!("other")))),
            None,
            LoginError::InvalidIdToken("id token audience is wrong"),
        ),
        (
            Box::new(|w, n| token_answer(&w.id_token(n, |c| c["iss"] = json!("https://evil")))),
            None,
            LoginError::InvalidIdToken("id token issuer is wrong"),
        ),
        (
            Box::new(|w, n| token_answer(&w.id_token(n, |_| {}))),
            Some(userinfo("mallory")),
            LoginError::InvalidIdToken("userinfo names another subject"),
        ),
        (
            Box::new(|w, n| token_answer(&w.id_token(n, |_| {}))),
            Some(IdpAnswer::Reset),
            LoginError::UserinfoFailed,
        ),
    ];
    for (token, info, expected) in cases {
        let (cookie, state, nonce) = w.begin();
        let req = w.callback_request(&cookie, &format!("code=c&state={state}"));
        let (mut cb, _) = Callback::start(&w.ctx(), &w.provider, &w.store, &req, NOW).unwrap();
        let mut random = seq_random(1);
        let mut step = cb.on_answer(
            &w.ctx(),
            &w.provider,
            &w.store,
            &token(&w, &nonce),
            &mut random,
            NOW,
        );
        if let Some(info) = info {
            let CallbackStep::Call(_) = step else {
                panic!("{step:?}")
            };
            step = cb.on_answer(&w.ctx(), &w.provider, &w.store, &info, &mut random, NOW);
        }
        let finished = done(step);
        assert_eq!(finished.result, Err(expected));
        assert!((400..600).contains(&finished.reply.status));
        let body = String::from_utf8_lossy(&finished.reply.body).to_string();
        assert!(!body.contains("at-1") && !body.contains("rt-1") && !body.contains(&nonce));
    }
    assert_eq!(w.session_keys(), 0);
}

#[test]
fn rules_refuse_with_403_and_unknown_kids_ask_for_a_refetch() {
    let mut w = World::new();
    w.cfg.rules.required_groups = vec!["admins".into()];
    let (cookie, state, nonce) = w.begin();
    let req = w.callback_request(&cookie, &format!("code=c&state={state}"));
    let (mut cb, _) = Callback::start(&w.ctx(), &w.provider, &w.store, &req, NOW).unwrap();
    let mut random = seq_random(1);
    cb.on_answer(
        &w.ctx(),
        &w.provider,
        &w.store,
        &token_answer(&w.id_token(&nonce, |_| {})),
        &mut random,
        NOW,
    );
    let finished = done(cb.on_answer(
        &w.ctx(),
        &w.provider,
        &w.store,
        &userinfo("alice"),
        &mut random,
        NOW,
    ));
    assert_eq!(finished.reply.status, 403);
    assert_eq!(w.session_keys(), 0);

    let (cookie, state, nonce) = w.begin();
    let req = w.callback_request(&cookie, &format!("code=c&state={state}"));
    let (mut cb, _) = Callback::start(&w.ctx(), &w.provider, &w.store, &req, NOW).unwrap();
    let rotated = TestIdpKeys {
        es: jwt_simple::prelude::ES256KeyPair::generate().with_key_id("es-new"),
        ..TestIdpKeys::new()
    };
    let claims = json!({"iss": ISSUER, "aud": "vigil client", "sub": "alice", "exp": NOW / 1_000_000_000 + 60, "iat": NOW / 1_000_000_000, "nonce": nonce});
    let step = cb.on_answer(
        &w.ctx(),
        &w.provider,
        &w.store,
        &token_answer(&rotated.sign("ES256", &claims)),
        &mut random,
        NOW,
    );
    assert!(matches!(
        done(step).result,
        Err(LoginError::InvalidIdToken(_))
    ));
    let later = NOW + crate::login::fetch::KID_REFETCH_INTERVAL_NS;
    let call = Fetcher::new().poll(&w.cfg, &w.store, "vm2", later).unwrap();
    assert_eq!(call.kind, LoginCallKind::Jwks);
}
