//! The callback: state check, code exchange with the PKCE verifier, ID
//! token validation, userinfo and rules, session creation, downstream token
//! and cookie, redirect to the original URL.
//!
//! A small state machine like the revalidation job: `Callback::start`
//! returns the token endpoint call; `on_answer` takes each answer and
//! returns the next call or the final reply. Every refusal is a clear 4xx
//! page, clears the state cookie and creates no session.

use serde_json::{Map, Value};

use super::cookies::{clear_cookie, session_cookie, state_cookie_path};
use super::error::LoginError;
use super::fetch::{request_jwks_refetch, retry_after_s};
use super::id_token::{validate_id_token, IdToken, IdTokenCheck, IdTokenError};
use super::idp_call::{get_with_bearer, post_form, IdpRequest, LoginCallKind};
use super::provider::Provider;
use super::request::{single, RequestView};
use super::seen::{remember_once, STATE_TAG};
use super::state::{constant_time_eq, LoginState, StateError};
use crate::config::{Config, LoginConfig};
use crate::reply::LocalReply;
use crate::revalidation::{
    classify_token_answer, classify_userinfo_answer, Class, FatalReason, IdpAnswer, TokenGrant,
};
use crate::session::{
    create_login_session, mint_time_ns, session_key, update_session, Change, CreatedSession, LoginIds,
    NewSession, SessionError,
};
use crate::store::SharedStore;
use crate::token::{MintClaims, Signer};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// What the login endpoints need besides the request.
pub struct LoginContext<'a> {
    pub cfg: &'a Config,
    pub login: &'a LoginConfig,
    /// Built once per configuration from `login.signing_key`.
    pub signer: &'a Signer,
}

/// A finished login, for logs and metrics (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    pub sub: String,
    pub slot: u32,
    /// Another user's session was evicted to make room.
    pub evicted: bool,
}

/// The reply to send, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackDone {
    pub reply: LocalReply,
    pub result: Result<LoggedIn, LoginError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackStep {
    /// Dispatch this call (from the stream's context) and pass the answer
    /// to `Callback::on_answer`.
    Call(IdpRequest),
    Done(CallbackDone),
}

enum Phase {
    Exchange,
    Userinfo {
        id_token: IdToken,
        /// Kept in the session for `id_token_hint` at logout.
        raw_id_token: String,
        grant: TokenGrant,
    },
    Finished,
}

/// One callback in progress. Debug omits the state and tokens.
pub struct Callback {
    state: LoginState,
    phase: Phase,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = match self.phase {
            Phase::Exchange => "exchange",
            Phase::Userinfo { .. } => "userinfo",
            Phase::Finished => "finished",
        };
        f.debug_struct("Callback").field("phase", &phase).finish()
    }
}

fn fail(ctx: &LoginContext, error: LoginError) -> CallbackDone {
    let mut reply = error.to_page();
    reply.headers.push(("set-cookie", clear_state(ctx)));
    CallbackDone {
        reply,
        result: Err(error),
    }
}

fn clear_state(ctx: &LoginContext) -> String {
    clear_cookie(
        &ctx.login.cookie,
        &ctx.login.state_cookie_name,
        state_cookie_path(ctx.login),
    )
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Callback {
    /// Checks the callback request and, when it is sound, returns the code
    /// exchange. Nothing is consumed until discovery and the JWKS are in
    /// (a 503 before that lets the browser retry the same callback).
    pub fn start(
        ctx: &LoginContext,
        provider: &Provider,
        store: &dyn SharedStore,
        req: &RequestView,
        now_ns: u64,
    ) -> Result<(Callback, IdpRequest), CallbackDone> {
        if req.method != "GET" {
            return Err(fail(ctx, LoginError::MethodNotAllowed));
        }
        if provider.ready().is_none() {
            let retry_after_s = retry_after_s(ctx.cfg, store, now_ns);
            return Err(CallbackDone {
                reply: LoginError::NotReady { retry_after_s }.to_page(),
                result: Err(LoginError::NotReady { retry_after_s }),
            });
        }
        // Two state cookies: one was planted (login CSRF); trust neither.
        let cookie = req
            .cookie(&ctx.login.state_cookie_name)
            .map_err(|_| fail(ctx, LoginError::StateMismatch))?
            .ok_or_else(|| fail(ctx, LoginError::StateMissing))?;
        let state = LoginState::open(&cookie, &ctx.login.state_secret, now_ns).map_err(|e| {
            fail(
                ctx,
                match e {
                    StateError::Expired => LoginError::StateMissing,
                    StateError::Malformed | StateError::BadSignature => LoginError::StateMismatch,
                },
            )
        })?;
        let params = req.query();
        let param = |name: &str| {
            single(&params, name)
                .map_err(|()| fail(ctx, LoginError::MissingParameter("a parameter is repeated")))
        };
        let sent_state = param("state")?.ok_or_else(|| fail(ctx, LoginError::StateMismatch))?;
        if !constant_time_eq(sent_state.as_bytes(), state.state.as_bytes()) {
            return Err(fail(ctx, LoginError::StateMismatch));
        }
        // RFC 9207: when the IdP names itself, it must be the configured one.
        if let Some(iss) = param("iss")? {
            if iss != ctx.login.provider.issuer {
                return Err(fail(ctx, LoginError::IssuerMismatch));
            }
        }
        if let Some(error) = param("error")? {
            let access_denied = error == "access_denied";
            return Err(fail(ctx, LoginError::IdpRefused { access_denied }));
        }
        let code = match param("code")? {
            Some(code) if !code.is_empty() => code,
            _ => {
                return Err(fail(
                    ctx,
                    LoginError::MissingParameter("the code parameter is missing"),
                ))
            }
        };
        // One use per state, on every VM: a replayed callback is refused
        // before the IdP sees the code again.
        match remember_once(
            store,
            &ctx.cfg.shared_data_prefix,
            STATE_TAG,
            &state.state,
            state.expires_ns,
            now_ns,
        ) {
            Ok(true) => {}
            Ok(false) => return Err(fail(ctx, LoginError::StateReplayed)),
            Err(_) => return Err(fail(ctx, LoginError::StoreFailed)),
        }
        let call = post_form(
            LoginCallKind::CodeExchange,
            &ctx.cfg.idp.token_endpoint,
            &ctx.cfg.idp,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &ctx.login.redirect_uri),
                ("code_verifier", &state.verifier),
            ],
            ctx.cfg.revalidate_timeout,
        );
        Ok((
            Callback {
                state,
                phase: Phase::Exchange,
            },
            call,
        ))
    }

    /// The answer to the last call. `provider` gives the current JWKS.
    pub fn on_answer(
        &mut self,
        ctx: &LoginContext,
        provider: &Provider,
        store: &dyn SharedStore,
        answer: &IdpAnswer,
        random: &mut dyn FnMut() -> Option<u64>,
        now_ns: u64,
    ) -> CallbackStep {
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        let outcome = match phase {
            Phase::Exchange => self.on_token(ctx, provider, store, answer, now_ns),
            Phase::Userinfo {
                id_token,
                raw_id_token,
                grant,
            } => self.on_userinfo(
                ctx,
                store,
                answer,
                (id_token, raw_id_token),
                grant,
                random,
                now_ns,
            ),
            Phase::Finished => Err(LoginError::TokenEndpointFailed),
        };
        match outcome {
            Ok(step) => step,
            Err(error) => CallbackStep::Done(fail(ctx, error)),
        }
    }

    fn on_token(
        &mut self,
        ctx: &LoginContext,
        provider: &Provider,
        store: &dyn SharedStore,
        answer: &IdpAnswer,
        now_ns: u64,
    ) -> Result<CallbackStep, LoginError> {
        let grant = match classify_token_answer(answer) {
            Class::Ok(grant) => grant,
            Class::Fatal(FatalReason::InvalidGrant) => return Err(LoginError::CodeRejected),
            Class::Fatal(_) | Class::NonFatal(_) => return Err(LoginError::TokenEndpointFailed),
        };
        let IdpAnswer::Response { body, .. } = answer else {
            return Err(LoginError::TokenEndpointFailed);
        };
        let raw_id_token = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| {
                v.get("id_token")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .ok_or(LoginError::InvalidIdToken(
                "the token answer has no id token",
            ))?;
        let keys = provider
            .ready()
            .map(|(_, keys)| keys)
            .ok_or(LoginError::NotReady { retry_after_s: 1 })?;
        let check = IdTokenCheck {
            issuer: &ctx.login.provider.issuer,
            client_id: &ctx.cfg.idp.client_id,
            nonce: &self.state.nonce,
            now_ns,
            leeway_ns: nanos(ctx.cfg.downstream.leeway),
        };
        let id_token = match validate_id_token(&raw_id_token, keys, &check) {
            Ok(id_token) => id_token,
            Err(IdTokenError::UnknownKey { .. }) => {
                request_jwks_refetch(ctx.cfg, store);
                return Err(LoginError::InvalidIdToken(
                    "the id token is signed with an unknown key; log in again",
                ));
            }
            Err(IdTokenError::Invalid(reason)) => return Err(LoginError::InvalidIdToken(reason)),
        };
        let call = get_with_bearer(
            &ctx.cfg.idp.userinfo_endpoint,
            &grant.access_token,
            ctx.cfg.revalidate_timeout,
        );
        self.phase = Phase::Userinfo {
            id_token,
            raw_id_token,
            grant,
        };
        Ok(CallbackStep::Call(call))
    }

    #[allow(clippy::too_many_arguments)]
    fn on_userinfo(
        &mut self,
        ctx: &LoginContext,
        store: &dyn SharedStore,
        answer: &IdpAnswer,
        (id_token, raw_id_token): (IdToken, String),
        grant: TokenGrant,
        random: &mut dyn FnMut() -> Option<u64>,
        now_ns: u64,
    ) -> Result<CallbackStep, LoginError> {
        let claims = match classify_userinfo_answer(answer, &id_token.sub) {
            Class::Ok(claims) => claims,
            Class::Fatal(FatalReason::SubjectMismatch) => {
                return Err(LoginError::InvalidIdToken("userinfo names another subject"))
            }
            Class::Fatal(_) | Class::NonFatal(_) => return Err(LoginError::UserinfoFailed),
        };
        crate::rules::check_rules(&ctx.cfg.rules, &claims)
            .map_err(|v| LoginError::Forbidden(v.reason()))?;
        let cfg = ctx.cfg;
        let lifetime_ns = nanos(ctx.login.session_lifetime);
        let expires_ns = now_ns.saturating_add(lifetime_ns);
        let access_expires_ns = match grant.expires_in_s {
            Some(s) => now_ns.saturating_add(s.saturating_mul(NANOS_PER_SEC)),
            None => now_ns.saturating_add(nanos(cfg.revalidate_interval)),
        };
        let extra: Map<String, Value> = ctx
            .login
            .token_claims
            .iter()
            .filter_map(|name| claims.get(name).map(|v| (name.clone(), v.clone())))
            .collect();
        let sub = id_token.sub;
        let created = create_login_session(
            store,
            cfg,
            NewSession {
                sub: sub.clone(),
                access_token: grant.access_token,
                access_expires_ns,
                refresh_token: grant.refresh_token,
                expires_ns,
                claims: Some(claims),
            },
            LoginIds {
                id_token: Some(raw_id_token),
                idp_sid: id_token.sid,
            },
            random,
            now_ns,
        )
        .map_err(|e| match e {
            SessionError::NoEntropy => LoginError::NoEntropy,
            _ => LoginError::StoreFailed,
        })?;
        let token = ctx.signer.mint(&MintClaims {
            iss: cfg.downstream.issuer.clone(),
            aud: cfg.downstream.audience.clone(),
            sub: sub.clone(),
            sid: created.sid.clone(),
            iat_ns: mint_time_ns(store, cfg, &sub, now_ns),
            exp_s: expires_ns / NANOS_PER_SEC,
            extra,
        });
        let cookie = token.map(|token| {
            session_cookie(
                ctx.login,
                &cfg.downstream.cookie_name,
                &token,
                ctx.login.session_lifetime.as_secs(),
            )
        });
        // Browsers drop a cookie over 4096 bytes: the user would come back
        // without it, log in again and again, and each lap would take a
        // session slot. The session just written is ended (its slot is free
        // for the next login) and the login fails with a page saying why.
        let cookie = match cookie {
            Ok(cookie) if cookie.len() <= MAX_SET_COOKIE_LEN => cookie,
            refused => {
                release_session(store, cfg, &created, now_ns);
                return Err(match refused {
                    Ok(_) => LoginError::SessionCookieTooLarge,
                    Err(_) => LoginError::StoreFailed,
                });
            }
        };
        let reply = LocalReply {
            status: 302,
            headers: vec![
                ("location", self.state.return_to.clone()),
                ("set-cookie", cookie),
                ("set-cookie", clear_state(ctx)),
                ("cache-control", "no-store".to_string()),
            ],
            body: Vec::new(),
        };
        Ok(CallbackStep::Done(CallbackDone {
            reply,
            result: Ok(LoggedIn {
                sub,
                slot: created.slot,
                evicted: created.evicted,
            }),
        }))
    }
}

/// Longest `Set-Cookie` value (name, value and attributes) a login sends:
/// RFC 6265 §6.1's minimum that browsers store, and Chrome's limit.
pub const MAX_SET_COOKIE_LEN: usize = 4096;

/// Ends a session this callback wrote but cannot hand out (dead record: the
/// slot is reused by the next login). Best effort: a record that is no
/// longer ours is left alone.
fn release_session(store: &dyn SharedStore, cfg: &Config, created: &CreatedSession, now_ns: u64) {
    let key = session_key(&cfg.shared_data_prefix, created.slot);
    let _ = update_session(store, &key, |current| match current {
        Some(mut s) if s.nonce == created.nonce => {
            s.kill("session_cookie_too_large", now_ns);
            s.seq = s.seq.saturating_add(1);
            Change::Write(s, ())
        }
        _ => Change::Keep(()),
    });
}

#[cfg(test)]
#[path = "callback_tests.rs"]
mod tests;
