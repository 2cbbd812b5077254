//! `cookies_headers`: what vigil reads from and writes to request headers:
//! the session cookie, the `cookie` header the upstream gets, the bearer
//! header, identity and session headers, query strings and form bodies,
//! and the post-login return URL.
//!
//! Invariants beyond "no panic":
//! * a cookie value vigil reads is the value of a pair with exactly that
//!   name; "no cookie" means no pair of that name has a non-empty value;
//!   an error means the name appears more than once;
//! * removing vigil's cookies never keeps one of them (under any trimming
//!   parse of the result) and keeps every other pair byte-exact (trimmed)
//!   and in order; it is idempotent;
//! * identity header values never hold control characters other than tab
//!   nor exceed `MAX_VALUE_LEN`, come in the configured order, and a safe
//!   string claim is sent verbatim; session header values are the Unix
//!   seconds of the given times;
//! * query strings and form bodies decode like the WHATWG
//!   `application/x-www-form-urlencoded` parser (`form_urlencoded`), and
//!   `parse(serialize(pairs)) == pairs`;
//! * the return URL is the candidate or `/`, always a same-origin path
//!   (`/` not followed by `/` or `\`, visible ASCII, bounded).

use serde_json::{json, Value};
use vigil::config::{IdentityHeader, SessionHeaders};
use vigil::identity::{header_names, identity_headers, session_headers, MAX_VALUE_LEN};
use vigil::login::form;
use vigil::login::return_url::{safe_return_url, MAX_RETURN_LEN};
use vigil::revalidation::ValidationTimes;
use vigil::token::extract::cookie_header_without;
use vigil::token::extract_token;

use super::fixtures::SEC;
use super::input::{Input, Output};

/// vigil's own cookies (session, login state, the pre-prefix defaults).
const OWN: [&str; 4] = [
    "__Host-vigil_session",
    "__Host-vigil_session_login",
    "vigil_session",
    "vigil_session_login",
];

pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    match input.u8() % 5 {
        0 => cookies(&mut input),
        1 => authorization(&mut input),
        2 => identity(&mut input),
        3 => forms(&mut input),
        _ => return_url(&mut input),
    }
}

/// The `(name, value)` of a `cookie` header segment, trimmed, unquoted, as
/// an upstream or a browser reads it; `None` without `=`.
fn pair(segment: &str) -> Option<(&str, &str)> {
    let (k, v) = segment.split_once('=')?;
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v);
    Some((k.trim(), v))
}

fn segment_name(segment: &str) -> &str {
    segment.split_once('=').map_or(segment, |(k, _)| k).trim()
}

fn cookies(input: &mut Input) {
    let name = if input.bool() {
        input.text()
    } else {
        input.pick(&OWN).to_string()
    };
    let header = String::from_utf8_lossy(input.rest()).into_owned();
    // Reading the session cookie.
    let values: Vec<&str> = header
        .split(';')
        .filter_map(pair)
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .collect();
    match extract_token(None, Some(&header), &name) {
        Ok(Some(token)) => {
            assert!(!token.is_empty());
            assert!(
                values.contains(&token.as_str()),
                "{token:?} is not a value of {name:?}"
            );
        }
        Ok(None) => assert!(
            values.iter().all(|v| v.is_empty()),
            "{name:?} missed in {header:?}"
        ),
        Err(_) => assert!(values.len() >= 2, "refused {header:?} for {name:?}"),
    }
    // Removing vigil's cookies for the upstream.
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty() && !OWN.contains(&segment_name(s)))
        .collect();
    let out = cookie_header_without(&header, &OWN);
    match &out {
        None => assert!(
            kept.is_empty(),
            "{header:?}: every cookie dropped, {kept:?} were not ours"
        ),
        Some(out) => {
            assert_eq!(out.split("; ").collect::<Vec<_>>(), kept, "{header:?}");
            for segment in out.split(';') {
                assert!(!OWN.contains(&segment_name(segment)), "{out:?} keeps ours");
                let ascii_name = segment.split_once('=').map_or(segment, |(k, _)| k);
                let ascii_name = ascii_name.trim_matches([' ', '\t']);
                assert!(!OWN.contains(&ascii_name), "{out:?} keeps ours");
            }
            for own in OWN {
                assert_eq!(
                    extract_token(None, Some(out), own),
                    Ok(None),
                    "{out:?} keeps {own}"
                );
            }
            assert_eq!(
                cookie_header_without(out, &OWN).as_ref(),
                Some(out),
                "not idempotent"
            );
        }
    }
}

fn authorization(input: &mut Input) {
    let header = match input.u8() % 3 {
        0 => format!("Bearer {}", input.text()),
        1 => format!("{}{}", input.text(), input.text()),
        _ => String::from_utf8_lossy(input.rest()).into_owned(),
    };
    let cookie = format!("vigil_session=from-cookie; {}", input.text());
    match extract_token(Some(&header), Some(&cookie), "vigil_session") {
        Ok(Some(token)) => {
            let value = header.trim_matches([' ', '\t']);
            assert!(value.is_char_boundary(6) && value[..6].eq_ignore_ascii_case("bearer"));
            assert!(value[6..].starts_with([' ', '\t']), "{header:?}");
            assert_eq!(
                value[6..].trim_start_matches([' ', '\t']),
                token,
                "{header:?}"
            );
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)));
        }
        Ok(None) => panic!("a present authorization header fell back: {header:?}"),
        Err(_) => {
            // Completeness: `Bearer <token68>` is always accepted.
            if let Some(rest) = header.strip_prefix("Bearer ") {
                let ok = !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
                assert!(!ok, "refused {header:?}");
            }
        }
    }
}

const CLAIMS: [&str; 6] = ["sub", "email", "groups", "n", "flag", "obj"];

fn claim_value(input: &mut Input, depth: u8) -> Value {
    match input.u8() % 8 {
        0 => Value::Null,
        1 => Value::from(input.bool()),
        2 => Value::from(input.u64()),
        3 => serde_json::Number::from_f64(f64::from_bits(input.u64()))
            .map_or(Value::Null, Value::Number),
        4 if depth < 3 => {
            let n = input.u8() % 5;
            Value::Array((0..n).map(|_| claim_value(input, depth + 1)).collect())
        }
        5 if depth < 3 => {
            let mut map = serde_json::Map::new();
            for _ in 0..input.u8() % 4 {
                map.insert(input.text(), claim_value(input, depth + 1));
            }
            Value::Object(map)
        }
        6 => Value::from(
            input
                .pick(&["a,b", "a\r\nx-admin: 1", "tab\there", "\u{0}", "Zoë"])
                .to_string(),
        ),
        _ => Value::from(input.text()),
    }
}

fn identity(input: &mut Input) {
    let map: Vec<IdentityHeader> = (0..input.u8() % 6)
        .map(|i| IdentityHeader {
            header: format!("x-h{i}"),
            claim: if input.bool() {
                input.pick(&CLAIMS).to_string()
            } else {
                input.text()
            },
            list: false,
        })
        .collect();
    let claims = if input.bool() {
        serde_json::from_slice(input.bytes()).unwrap_or(Value::Null)
    } else {
        let mut obj = serde_json::Map::new();
        for name in CLAIMS {
            if input.bool() {
                obj.insert(name.to_string(), claim_value(input, 0));
            }
        }
        Value::Object(obj)
    };
    let out = identity_headers(&map, &claims);
    let mut next = 0;
    for (header, value) in &out {
        let at = map[next..]
            .iter()
            .position(|m| &m.header == header)
            .expect("configured, in order");
        let entry = &map[next + at];
        next += at + 1;
        assert!(
            value.len() <= MAX_VALUE_LEN,
            "{header}: {} bytes",
            value.len()
        );
        assert!(
            !value.chars().any(|c| c.is_control() && c != '\t'),
            "{header}: {value:?}"
        );
        if let Some(Value::String(s)) = claims.get(&entry.claim) {
            assert_eq!(value, s, "string claims are sent verbatim");
        }
    }
    for entry in &map {
        if let Some(Value::String(s)) = claims.get(&entry.claim) {
            let safe = s.len() <= MAX_VALUE_LEN && !s.chars().any(|c| c.is_control() && c != '\t');
            if safe {
                assert!(
                    out.iter().any(|(h, v)| h == &entry.header && v == s),
                    "{s:?} not sent"
                );
            }
        }
    }
    let names: Vec<&str> = map.iter().map(|m| m.header.as_str()).collect();
    assert_eq!(header_names(&map), names);
    let times = ValidationTimes {
        validated_ns: input.u64(),
        revalidate_ns: input.bool().then(|| input.u64()),
    };
    let session = SessionHeaders {
        validated_at: input.bool().then(|| "x-validated-at".to_string()),
        revalidate_at: input.bool().then(|| "x-revalidate-at".to_string()),
    };
    for (header, value) in session_headers(&session, &times) {
        let ns = if header == "x-validated-at" {
            Some(times.validated_ns)
        } else {
            times.revalidate_ns
        };
        assert_eq!(Some(value), ns.map(|ns| (ns / SEC).to_string()), "{header}");
    }
}

fn forms(input: &mut Input) {
    if input.bool() {
        let pairs: Vec<(String, String)> = (0..input.u8() % 5)
            .map(|_| (input.text(), input.text()))
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let text = form::serialize(&refs);
        let back = form::parse(&text);
        assert_eq!(back, pairs, "{text:?}");
        return;
    }
    let text = String::from_utf8_lossy(input.rest()).into_owned();
    let ours = form::parse(&text);
    let whatwg: Vec<(String, String)> = form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(ours, whatwg, "{text:?}");
}

fn return_url(input: &mut Input) {
    let candidate = String::from_utf8_lossy(input.rest()).into_owned();
    let url = safe_return_url(&candidate);
    assert!(
        url == candidate || url == "/",
        "{candidate:?} became {url:?}"
    );
    let bytes = url.as_bytes();
    assert_eq!(bytes.first(), Some(&b'/'));
    assert!(!matches!(bytes.get(1), Some(b'/' | b'\\')), "{url:?}");
    assert!(url.len() <= MAX_RETURN_LEN);
    assert!(
        bytes.iter().all(|b| b.is_ascii_graphic() && *b != b'\\'),
        "{url:?}"
    );
}

pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (name, header) in [
        ("cookie-plain", "theme=dark; vigil_session=a.b.c; x=1"),
        (
            "cookie-host",
            "__Host-vigil_session=tok; __Host-vigil_session_login=st; lang=fr",
        ),
        ("cookie-quoted", "vigil_session=\"tok\" ;  a = 1 ;b"),
        (
            "cookie-duplicate",
            "vigil_session=first; vigil_session=second",
        ),
        ("cookie-empty", "vigil_session=; other=1;;"),
        (
            "cookie-lookalike",
            "vigil_sessionx=1; xvigil_session=2; vigil_session_login",
        ),
    ] {
        seeds.push((
            name.to_string(),
            Output::new()
                .u8(0)
                .bool(false)
                .u8(2)
                .rest(header.as_bytes())
                .finish(),
        ));
    }
    for (name, header) in [
        ("bearer", "Bearer abc.def.ghi"),
        ("bearer-tabs", "\tbearer \t abc.def~+/= "),
        ("basic", "Basic dXNlcjpwYXNz"),
        ("bearer-comma", "Bearer a,b"),
    ] {
        seeds.push((
            format!("auth-{name}"),
            Output::new().u8(1).u8(2).rest(header.as_bytes()).finish(),
        ));
    }
    let claims = json!({"sub": "alice", "email": "a@example.com", "groups": ["a", "b"], "n": 1.5,
        "flag": true, "obj": {"x": 1}, "evil": "a\r\nx-admin: 1"});
    let mut identity = Output::new().u8(2).u8(5);
    for claim in ["sub", "email", "groups", "n", "evil"] {
        identity = identity.bool(false).text(claim);
    }
    let identity = identity.bool(true).bytes(claims.to_string().as_bytes());
    let identity = identity
        .u64(1_700_000_000_999_999_999)
        .bool(true)
        .u64(1_700_000_060_000_000_000)
        .bool(true)
        .bool(true);
    seeds.push(("identity".into(), identity.finish()));
    for (name, body) in [
        (
            "form-logout",
            "logout_token=eyJhbGciOiJFZERTQSJ9.e30.sig&x=%41+b",
        ),
        ("form-escapes", "a=%zz&b=%4&&c&%C3%A9=%E2%82%AC"),
        (
            "query",
            "code=abc&state=xyz&iss=https%3A%2F%2Fidp.example.com",
        ),
    ] {
        seeds.push((
            name.into(),
            Output::new()
                .u8(3)
                .bool(false)
                .rest(body.as_bytes())
                .finish(),
        ));
    }
    let round = Output::new()
        .u8(3)
        .bool(true)
        .u8(2)
        .text("a b")
        .text("x&y=z/é")
        .text("k")
        .text("");
    seeds.push(("form-roundtrip".into(), round.finish()));
    for (name, url) in [
        ("return-ok", "/app?x=1&y=%2F#frag"),
        ("return-scheme-relative", "//evil.example.com/"),
        ("return-backslash", "/\\evil.example.com"),
        ("return-absolute", "https://evil.example.com/"),
    ] {
        seeds.push((
            name.into(),
            Output::new().u8(4).rest(url.as_bytes()).finish(),
        ));
    }
    seeds
}
