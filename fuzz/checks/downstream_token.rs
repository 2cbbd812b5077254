//! `downstream_token`: the request path's token handling, from the headers
//! to verified claims and the per-VM cache.
//!
//! Invariants beyond "no panic":
//! * a token vigil signed with a configured key and valid claims verifies,
//!   with exactly the claims signed;
//! * any byte-level variant of it that verifies has exactly the signed
//!   `sub`, `sid`, `iat_ns`, `exp` and extra claims;
//! * a token whose header `alg` is `none` (any case) or not in the
//!   allow-list never verifies, nor does one whose `alg` differs from the
//!   algorithm of the key its `kid` selects (no HMAC/asymmetric confusion),
//!   nor an unsigned or wrongly keyed EdDSA/ES256 token;
//! * every verified token's claims pass the documented claim checks
//!   (`iss`, `aud`, `exp` + leeway, `iat_ns`, non-empty `sub` and `sid`);
//! * the bearer token taken from `Authorization` is exactly the token68
//!   after the scheme; a present header never falls back to the cookie;
//! * the cache serves a token only with the claims it was verified with,
//!   only before `exp`, never a token that was not verified, and never more
//!   than its capacity; a cache hit is a token verification also accepts.

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use vigil::token::{extract_token, DownstreamClaims, MintClaims, TokenCache, Verifier};

use super::fixtures::{
    base_config, down_signers, hs256_signature, raw_jwt, COOKIE, DOWN_AUDIENCE, DOWN_ISSUER,
    DOWN_KEYS, HS_SECRET, NOW_NS, NOW_S, SEC,
};
use super::input::{Input, Output};

const LEEWAY_NS: u64 = 30 * SEC;
const ALLOWED: [&str; 3] = ["HS256", "EdDSA", "ES256"];
const REGISTERED: [&str; 10] = [
    "iss", "aud", "sub", "exp", "nbf", "iat", "jti", "nonce", "sid", "iat_ns",
];

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| Verifier::new(&base_config().downstream))
}

pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    match input.u8() % 4 {
        0 => raw(&mut input),
        1 => mutated(&mut input),
        2 => forged(&mut input),
        _ => cached(&mut input),
    }
}

/// Arbitrary headers through extraction and verification.
fn raw(input: &mut Input) {
    let auth = input.bool().then(|| input.text());
    let cookie = input.bool().then(|| input.text());
    let direct = String::from_utf8_lossy(input.rest()).into_owned();
    match extract_token(auth.as_deref(), cookie.as_deref(), COOKIE) {
        Ok(Some(token)) => {
            match &auth {
                Some(header) => check_bearer(header, &token),
                None => {
                    let header = cookie.as_deref().unwrap_or_default();
                    assert!(!token.is_empty() && header.contains(token.as_str()));
                }
            }
            verify_and_check(&token, NOW_NS);
        }
        Ok(None) => assert!(
            auth.is_none(),
            "a present authorization header gave no token"
        ),
        Err(_) => {}
    }
    verify_and_check(&direct, NOW_NS);
}

/// `header` gave `token`: it is `Bearer` (any case), blanks, the token68.
fn check_bearer(header: &str, token: &str) {
    let value = header.trim_matches([' ', '\t']);
    assert!(value.len() > 6 && value.is_char_boundary(6), "{header:?}");
    assert!(value[..6].eq_ignore_ascii_case("bearer"), "{header:?}");
    let after = &value[6..];
    assert!(after.starts_with([' ', '\t']), "{header:?}");
    assert_eq!(after.trim_start_matches([' ', '\t']), token, "{header:?}");
    assert!(
        !token.is_empty() && token.bytes().all(is_token68),
        "{token:?}"
    );
}

fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

/// Verifies `token` and, when it is accepted, checks what was accepted.
fn verify_and_check(token: &str, now_ns: u64) -> Option<DownstreamClaims> {
    let claims = verifier().verify(token, now_ns).ok()?;
    let mut parts = token.split('.');
    let header = decode_part(parts.next().unwrap_or_default()).expect("verified header is JSON");
    let payload = decode_part(parts.next().unwrap_or_default()).expect("verified claims are JSON");
    // The algorithm is listed and is the algorithm of the key `kid` names.
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .expect("verified token has an alg");
    assert!(ALLOWED.contains(&alg), "verified with alg {alg:?}");
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .expect("our keys all have a kid");
    let key_alg = DOWN_KEYS.iter().find(|(k, _)| *k == kid).map(|(_, a)| *a);
    assert_eq!(
        key_alg,
        Some(alg),
        "kid {kid:?} verified a token with alg {alg:?}"
    );
    // The claims returned are the claims in the token, and they hold.
    assert_eq!(
        payload.get("iss").and_then(Value::as_str),
        Some(DOWN_ISSUER)
    );
    let aud_ok = match payload.get("aud") {
        Some(Value::String(a)) => a == DOWN_AUDIENCE,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(DOWN_AUDIENCE)),
        _ => false,
    };
    assert!(aud_ok, "verified with aud {:?}", payload.get("aud"));
    assert_eq!(
        payload.get("sub").and_then(Value::as_str),
        Some(claims.sub.as_str())
    );
    assert_eq!(
        payload.get("sid").and_then(Value::as_str),
        Some(claims.sid.as_str())
    );
    assert_eq!(
        payload.get("iat_ns").and_then(Value::as_u64),
        Some(claims.iat_ns)
    );
    assert_eq!(payload.get("exp").and_then(Value::as_u64), Some(claims.exp));
    assert!(!claims.sub.is_empty() && !claims.sid.is_empty());
    assert!(now_ns < claims.exp.saturating_mul(SEC).saturating_add(LEEWAY_NS));
    assert!(claims.iat_ns <= now_ns.saturating_add(LEEWAY_NS));
    if let Some(nbf) = payload.get("nbf") {
        let nbf = nbf.as_u64().expect("nbf is an integer");
        assert!(nbf.saturating_mul(SEC) <= now_ns.saturating_add(LEEWAY_NS));
    }
    let mut extra = payload.clone();
    for name in REGISTERED {
        extra.remove(name);
    }
    assert_eq!(claims.extra, extra);
    Some(claims)
}

fn decode_part(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Claims for a token signed by `down_signers()[key]`; valid unless the
/// input says otherwise.
fn mint_claims(input: &mut Input) -> MintClaims {
    let flags = input.u8();
    let text_or = |input: &mut Input, fallback: &str, use_input: bool| {
        if use_input {
            input.text()
        } else {
            fallback.to_string()
        }
    };
    let iss = text_or(input, DOWN_ISSUER, flags & 1 != 0);
    let aud = text_or(input, DOWN_AUDIENCE, flags & 2 != 0);
    let sub = text_or(input, "alice", flags & 4 != 0);
    let sid = text_or(input, "17.AAAAAAAAAAAAAAAAAAAAAA", flags & 8 != 0);
    let iat_ns = NOW_NS - u64::from(input.u32()) * 1000;
    // Any time up to 2106: `Signer::mint` clamps `exp` there (jwt-simple's
    // timestamps saturate at u32::MAX seconds), so later ones are not what
    // the token carries.
    let exp_s = if flags & 16 != 0 {
        u64::from(input.u32())
    } else {
        NOW_S + 1 + u64::from(input.u16())
    };
    let mut extra = Map::new();
    if flags & 32 != 0 {
        extra.insert("email".into(), Value::from(input.text()));
    }
    if flags & 64 != 0 {
        extra.insert(input.text(), Value::from(input.text()));
    }
    MintClaims {
        iss,
        aud,
        sub,
        sid,
        iat_ns,
        exp_s,
        extra,
    }
}

fn is_valid(claims: &MintClaims) -> bool {
    claims.iss == DOWN_ISSUER
        && claims.aud == DOWN_AUDIENCE
        && !claims.sub.is_empty()
        && !claims.sid.is_empty()
        && NOW_NS < claims.exp_s.saturating_mul(SEC).saturating_add(LEEWAY_NS)
}

/// The claims a verification of a token minted from `claims` must return.
fn expected(claims: &MintClaims) -> DownstreamClaims {
    let mut extra = claims.extra.clone();
    for name in REGISTERED {
        extra.remove(name);
    }
    DownstreamClaims {
        sub: claims.sub.clone(),
        sid: claims.sid.clone(),
        iat_ns: claims.iat_ns,
        exp: claims.exp_s,
        extra,
    }
}

/// Applies the input's edits (overwrite, insert, delete) to `token`.
fn mutate(token: &str, input: &mut Input) -> String {
    let mut bytes = token.as_bytes().to_vec();
    for _ in 0..input.u8() % 8 {
        let op = input.u8() % 3;
        let at = usize::from(input.u16()) % (bytes.len() + 1);
        let byte = input.u8();
        match op {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A token vigil signed, then edited: whatever verifies carries exactly the
/// signed claims.
fn mutated(input: &mut Input) {
    let key = input.below(DOWN_KEYS.len());
    let claims = mint_claims(input);
    let Ok(token) = down_signers()[key].mint(&claims) else {
        return;
    };
    let original = verify_and_check(&token, NOW_NS);
    if is_valid(&claims) {
        assert_eq!(
            original,
            Some(expected(&claims)),
            "a valid signed token must verify"
        );
    }
    let variant = mutate(&token, input);
    if let Some(got) = verify_and_check(&variant, NOW_NS) {
        assert_eq!(
            got,
            expected(&claims),
            "a variant verified with other claims"
        );
    }
    // The same bytes through both places a token travels in.
    if !variant.is_empty() && variant.bytes().all(is_token68) {
        let bearer = format!("Bearer {variant}");
        assert_eq!(
            extract_token(Some(&bearer), None, COOKIE),
            Ok(Some(variant.clone()))
        );
        let cookie = format!("theme=dark; {COOKIE}={variant}; x=1");
        assert_eq!(
            extract_token(None, Some(&cookie), COOKIE),
            Ok(Some(variant.clone()))
        );
    }
}

const FORGED_ALGS: [&str; 16] = [
    "none", "None", "NONE", "nOnE", "HS256", "EdDSA", "ES256", "RS256", "HS384", "HS512", "ES384",
    "PS256", "Ed25519", "", "hs256", "HS256 ",
];
const KIDS: [Option<&str>; 6] = [
    None,
    Some("hs"),
    Some("ed"),
    Some("es"),
    Some("rs"),
    Some(""),
];

/// Hand-made headers and signatures: only a real HS256 signature under the
/// `hs` key may verify.
fn forged(input: &mut Input) {
    let alg = *input.pick(&FORGED_ALGS);
    let kid = *input.pick(&KIDS);
    let mut header = json!({"typ": "JWT"});
    match input.u8() % 4 {
        0 => {}
        1 => header["alg"] = Value::from(input.text()),
        2 => header["alg"] = json!(["HS256"]),
        _ => header["alg"] = Value::from(alg),
    }
    if let Some(kid) = kid {
        header["kid"] = Value::from(kid);
    }
    let claims = if input.bool() {
        input.text()
    } else {
        json!({
            "iss": DOWN_ISSUER, "aud": DOWN_AUDIENCE, "sub": "mallory",
            "sid": "3.BBBBBBBBBBBBBBBBBBBBBB", "iat_ns": NOW_NS, "exp": NOW_S + 60
        })
        .to_string()
    };
    let header_text = header.to_string();
    let unsigned = raw_jwt(&header_text, &claims, b"");
    let signing_input = unsigned.trim_end_matches('.');
    let signers = down_signers();
    let sig_kind = input.u8() % 6;
    let signature = match sig_kind {
        0 => Vec::new(),
        1 => hs256_signature(signing_input, HS_SECRET.as_bytes()),
        2 => hs256_signature(
            signing_input,
            signers[1].public_key_pem().unwrap_or_default().as_bytes(),
        ),
        3 => hs256_signature(
            signing_input,
            signers[2].public_key_pem().unwrap_or_default().as_bytes(),
        ),
        4 => hs256_signature(signing_input, b""),
        _ => input.bytes().to_vec(),
    };
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&signature));
    let result = verify_and_check(&token, NOW_NS);
    let header_alg = header.get("alg").and_then(Value::as_str);
    if result.is_some() {
        assert_eq!(header_alg, Some("HS256"), "forged {header_text} verified");
        assert_eq!(kid, Some("hs"), "forged {header_text} verified");
        assert_eq!(
            sig_kind, 1,
            "verified without the HS256 secret: {header_text}"
        );
    }
    // Positive control: the harness itself can make a token that verifies.
    if header_alg == Some("HS256")
        && kid == Some("hs")
        && sig_kind == 1
        && claims.starts_with("{\"")
    {
        let parsed: Value = serde_json::from_str(&claims).unwrap_or_default();
        if parsed.get("sub") == Some(&Value::from("mallory")) {
            assert!(
                result.is_some(),
                "a correctly signed HS256 token was refused"
            );
        }
    }
}

/// Verify, insert and look up a sequence of tokens in a small cache on a
/// clock that only moves forward.
fn cached(input: &mut Input) {
    let capacity = 1 + input.below(4);
    let mut cache = TokenCache::new(capacity);
    let mut verified: HashMap<String, DownstreamClaims> = HashMap::new();
    let mut tokens: Vec<String> = Vec::new();
    let mut now = NOW_NS;
    for _ in 0..input.u8() % 12 {
        now = now.saturating_add(u64::from(input.u16()) * SEC / 4);
        match input.u8() % 3 {
            0 => {
                let key = input.below(DOWN_KEYS.len());
                let mut claims = mint_claims(input);
                claims.exp_s = NOW_S + u64::from(input.u16());
                if let Ok(token) = down_signers()[key].mint(&claims) {
                    tokens.push(token);
                }
            }
            1 => {
                let Some(token) = pick_token(&tokens, input) else {
                    continue;
                };
                if let Some(claims) = verify_and_check(&token, now) {
                    verified.insert(token.clone(), claims.clone());
                    cache.insert(&token, claims, now);
                }
            }
            _ => {
                let Some(token) = pick_token(&tokens, input) else {
                    continue;
                };
                if let Some(hit) = cache.get(&token, now) {
                    assert_eq!(
                        Some(&hit),
                        verified.get(&token),
                        "cache served other claims"
                    );
                    assert!(now < hit.exp_ns(), "cache served an expired token");
                    assert_eq!(
                        verifier().verify(&token, now),
                        Ok(hit),
                        "a cache hit verification refuses"
                    );
                }
            }
        }
        assert!(cache.len() <= capacity, "cache over capacity");
    }
}

/// One of the minted tokens, or an edit of one (never verified before).
fn pick_token(tokens: &[String], input: &mut Input) -> Option<String> {
    if tokens.is_empty() {
        return None;
    }
    let token = &tokens[input.below(tokens.len())];
    Some(if input.u8().is_multiple_of(4) {
        mutate(token, input)
    } else {
        token.clone()
    })
}

/// Seed inputs: valid and near-valid tokens through each path.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let valid = |out: Output| out.u8(0).u32(5_000).u16(600);
    for (key, (kid, _)) in DOWN_KEYS.iter().enumerate() {
        let token = down_signers()[key]
            .mint(&MintClaims {
                iss: DOWN_ISSUER.into(),
                aud: DOWN_AUDIENCE.into(),
                sub: "alice".into(),
                sid: "17.AAAAAAAAAAAAAAAAAAAAAA".into(),
                iat_ns: NOW_NS - 5_000_000,
                exp_s: NOW_S + 600,
                extra: Map::new(),
            })
            .expect("seed token");
        let bearer = Output::new()
            .u8(0)
            .bool(true)
            .text(&format!("Bearer {token}"))
            .bool(false);
        seeds.push((
            format!("raw-bearer-{kid}"),
            bearer.rest(token.as_bytes()).finish(),
        ));
        let cookie = Output::new()
            .u8(0)
            .bool(false)
            .bool(true)
            .text(&format!("theme=dark; {COOKIE}={token}"));
        seeds.push((format!("raw-cookie-{kid}"), cookie.finish()));
        let untouched = valid(Output::new().u8(1).u8(key as u8)).u8(0);
        seeds.push((format!("mutated-none-{kid}"), untouched.finish()));
        let flipped = valid(Output::new().u8(1).u8(key as u8))
            .u8(1)
            .u8(0)
            .u16(40)
            .u8(b'A');
        seeds.push((format!("mutated-flip-{kid}"), flipped.finish()));
        let email = Output::new()
            .u8(1)
            .u8(key as u8)
            .u8(32)
            .u32(1)
            .u16(60)
            .text("a@example.com");
        seeds.push((
            format!("mutated-email-{kid}"),
            email.u8(1).u8(2).u16(10).finish(),
        ));
    }
    for (name, alg, kid, sig) in [
        ("forged-none", 0u8, 0u8, 0u8),
        ("forged-none-hs", 1, 1, 1),
        ("forged-hs256-real", 4, 1, 1),
        ("forged-hs256-ed-pem", 4, 2, 2),
        ("forged-hs256-es-pem", 4, 3, 3),
        ("forged-eddsa-unsigned", 5, 2, 0),
        ("forged-rs256", 7, 4, 1),
    ] {
        let out = Output::new()
            .u8(2)
            .u8(alg)
            .u8(kid)
            .u8(3)
            .bool(false)
            .u8(sig);
        seeds.push((name.into(), out.finish()));
    }
    // Mint (exp in 4 s), verify, hit, expire 10 s later, re-verify, mint again.
    let cache = Output::new()
        .u8(3)
        .u8(1)
        .u8(6)
        .u16(0)
        .u8(0)
        .u8(0)
        .u8(0)
        .u32(1)
        .u16(100)
        .u16(4)
        .u16(0)
        .u8(1)
        .u8(0)
        .u8(1)
        .u16(0)
        .u8(2)
        .u8(0)
        .u8(1)
        .u16(40)
        .u8(2)
        .u8(0)
        .u8(1)
        .u16(0)
        .u8(1)
        .u8(0)
        .u8(1)
        .u16(0)
        .u8(0)
        .u8(1)
        .u8(0)
        .u32(1)
        .u16(100)
        .u16(600);
    seeds.push(("cache-insert-get-expire".into(), cache.finish()));
    seeds
}
