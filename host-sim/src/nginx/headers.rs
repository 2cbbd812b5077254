//! ngx_wasm_module's header map writes (`src/http/ngx_http_wasm_headers.c`, `..._request.c`), replayed on a
//! `HeaderMap` whose entries can be hidden.
//!
//! nginx never deletes a header: a "removed" entry gets `hash = 0`. The pairs list skips such entries, the
//! single-value getter does not, and nginx's proxy module sends them upstream. A replace (`SET`) walks the
//! list: the first visible entry of that name is updated in place; every further visible one is hidden, and
//! then (the walk restarts after each hide) the updated one too. So replacing a header the client sent once
//! updates it; replacing one it sent twice hides both copies (the first carrying the new value). A remove
//! followed by a replace adds a new line next to the hidden one. Built-in request headers keep a pointer in
//! `r->headers_in` (`Authorization`, `Host`, ...): a remove hides the pointed entry, a replace revives and
//! updates it. `Cookie` and `X-Forwarded-For` keep a chain, rebuilt by every replace or remove.

use crate::headers::{Entry, HeaderMap};

/// The request headers with a single `headers_in` pointer in this build (`ngx_http_wasm_headers_request.c`;
/// gzip and X-Forwarded-For support are in nginx's default build, realip and dav are not).
const SINGLE: &[&str] = &[
    "host",
    "connection",
    "if-modified-since",
    "if-unmodified-since",
    "if-match",
    "if-none-match",
    "user-agent",
    "referer",
    "content-length",
    "content-type",
    "range",
    "if-range",
    "transfer-encoding",
    "expect",
    "upgrade",
    "accept-encoding",
    "via",
    "authorization",
    "keep-alive",
];

/// Request headers nginx chains (`headers_in.cookie`, `headers_in.x_forwarded_for`).
const MULTI: &[&str] = &["cookie", "x-forwarded-for"];

/// The `headers_in` pointers and chains of a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Builtins {
    single: Vec<(&'static str, usize)>,
    multi: Vec<(&'static str, Vec<usize>)>,
}

impl Builtins {
    /// As nginx's header parser leaves them: the first entry of each single built-in, every entry of a chain.
    pub fn parse(map: &HeaderMap) -> Builtins {
        let mut b = Builtins::default();
        for (i, e) in map.entries.iter().enumerate() {
            if let Some(name) = SINGLE.iter().find(|n| **n == e.key) {
                if !b.single.iter().any(|(n, _)| n == name) {
                    b.single.push((name, i));
                }
            } else if let Some(name) = MULTI.iter().find(|n| **n == e.key) {
                match b.multi.iter_mut().find(|(n, _)| n == name) {
                    Some((_, chain)) => chain.push(i),
                    None => b.multi.push((name, vec![i])),
                }
            }
        }
        b
    }

    /// The entries `$http_<name>` reads for a chained header (`Cookie`: joined with "; ").
    pub fn chain(&self, name: &str) -> Option<&[usize]> {
        self.multi.iter().find(|(n, _)| *n == name).map(|(_, c)| c.as_slice())
    }

    /// The entry a single built-in's pointer designates.
    pub fn pointer(&self, name: &str) -> Option<usize> {
        self.single.iter().find(|(n, _)| *n == name).map(|(_, i)| *i)
    }
}

/// `ngx_http_wasm_headers_set_mode_e`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `proxy_replace_header_map_value` (and each pair of `proxy_set_header_map_pairs`).
    Set,
    /// `proxy_add_header_map_value`.
    Append,
    /// `proxy_remove_header_map_value`.
    Remove,
}

/// Request headers: prepares the built-in pointers (call once, on the map nginx parsed).
pub fn init_request(map: &mut HeaderMap) {
    let builtins = Builtins::parse(map);
    map.builtins = Some(builtins);
}

/// One write, as `ngx_http_wasm_set_header` does it (with the request built-ins when the map has them).
pub fn write(map: &mut HeaderMap, key: &str, value: &[u8], mode: Mode) {
    let key = key.to_ascii_lowercase();
    if let Some(mut builtins) = map.builtins.take() {
        if let Some(name) = SINGLE.iter().copied().find(|n| *n == key) {
            single(map, &mut builtins, name, value, mode);
        } else if let Some(name) = MULTI.iter().copied().find(|n| *n == key) {
            if matches!(mode, Mode::Set | Mode::Remove) {
                if let Some((_, chain)) = builtins.multi.iter_mut().find(|(n, _)| *n == name) {
                    chain.clear();
                }
            }
            let out = helper(map, &key, value, mode);
            if let Some(i) = out {
                match builtins.multi.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, chain)) => chain.push(i),
                    None => builtins.multi.push((name, vec![i])),
                }
            }
        } else {
            helper(map, &key, value, mode);
        }
        map.builtins = Some(builtins);
        return;
    }
    helper(map, &key, value, mode);
}

/// `ngx_http_wasm_set_builtin_header_handler`.
fn single(map: &mut HeaderMap, builtins: &mut Builtins, name: &'static str, value: &[u8], mode: Mode) {
    match (builtins.pointer(name), mode) {
        (None, Mode::Remove) => {}
        (None, _) => {
            if let Some(i) = helper(map, name, value, mode) {
                builtins.single.push((name, i));
            }
        }
        (Some(i), Mode::Remove) => map.entries[i].hidden = true,
        // "cannot add new ... builtin request header": logged, nothing written.
        (Some(_), Mode::Append) => {}
        (Some(i), Mode::Set) => {
            let e = &mut map.entries[i];
            e.value = value.to_vec();
            e.hidden = false;
        }
    }
}

/// `ngx_http_wasm_set_header_helper`, including its restart after each hidden entry; returns `*out`.
fn helper(map: &mut HeaderMap, key: &str, value: &[u8], mode: Mode) -> Option<usize> {
    if mode == Mode::Append {
        return Some(push(map, key, value));
    }
    let mut found = false;
    let mut out = None;
    'again: loop {
        for i in 0..map.entries.len() {
            let e = &mut map.entries[i];
            if e.hidden || e.key != key {
                continue;
            }
            if mode == Mode::Remove || found {
                e.hidden = true;
                out = None;
                found = true;
                continue 'again;
            }
            e.value = value.to_vec();
            out = Some(i);
            found = true;
        }
        break;
    }
    if found || mode == Mode::Remove {
        return out;
    }
    Some(push(map, key, value))
}

fn push(map: &mut HeaderMap, key: &str, value: &[u8]) -> usize {
    map.entries.push(Entry { key: key.to_string(), value: value.to_vec(), hidden: false });
    map.entries.len() - 1
}

/// `ngx_http_wasm_clear_req_headers` / `_resp_headers`: every visible entry is removed (hidden), by name.
pub fn clear(map: &mut HeaderMap) {
    loop {
        let Some(key) = map.entries.iter().find(|e| !e.hidden && !e.key.starts_with(':')).map(|e| e.key.clone()) else {
            return;
        };
        write(map, &key, b"", Mode::Remove);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::from_pairs(pairs.iter().copied());
        init_request(&mut map);
        map
    }

    fn all(map: &HeaderMap) -> Vec<(String, String, bool)> {
        map.all_entries().iter().map(|e| (e.key.clone(), String::from_utf8_lossy(&e.value).into_owned(), e.hidden)).collect()
    }

    #[test]
    fn replace_updates_one_copy_and_hides_two() {
        let mut map = request(&[("x-a", "1")]);
        write(&mut map, "x-a", b"v", Mode::Set);
        assert_eq!(all(&map), vec![("x-a".into(), "v".into(), false)]);
        let mut map = request(&[("x-a", "1"), ("x-a", "2")]);
        write(&mut map, "X-A", b"v", Mode::Set);
        assert_eq!(all(&map), vec![("x-a".into(), "v".into(), true), ("x-a".into(), "2".into(), true)]);
        assert_eq!(map.get("x-a"), Some(&b"v"[..]), "the getter ignores the hidden flag");
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn remove_then_set_is_two_lines_but_authorization_is_revived() {
        let mut map = request(&[("x-a", "1"), ("authorization", "Bearer t")]);
        write(&mut map, "x-a", b"", Mode::Remove);
        write(&mut map, "x-a", b"new", Mode::Set);
        write(&mut map, "authorization", b"", Mode::Remove);
        assert_eq!(map.len(), 1);
        write(&mut map, "authorization", b"Basic x", Mode::Set);
        assert_eq!(
            all(&map),
            vec![
                ("x-a".into(), "1".into(), true),
                ("authorization".into(), "Basic x".into(), false),
                ("x-a".into(), "new".into(), false)
            ]
        );
    }

    #[test]
    fn cookie_chain_follows_writes() {
        let mut map = request(&[("cookie", "a=1"), ("cookie", "b=2")]);
        assert_eq!(map.builtins.as_ref().unwrap().chain("cookie"), Some(&[0, 1][..]));
        write(&mut map, "cookie", b"a=1", Mode::Set);
        assert_eq!(map.builtins.as_ref().unwrap().chain("cookie"), Some(&[][..]), "both copies hidden");
        let mut map = request(&[("cookie", "a=1")]);
        write(&mut map, "cookie", b"", Mode::Set);
        assert_eq!(map.builtins.as_ref().unwrap().chain("cookie"), Some(&[0][..]));
    }
}
