//! What nginx's proxy module (nginx 1.27.4 `ngx_http_proxy_create_request`) sends upstream for a request whose
//! headers a filter changed, including `proxy_set_header NAME $http_NAME;` lines such as vigil's nginx example
//! uses.
//!
//! The module first writes its `proxy_set_header` lines (the configured ones, then its defaults: Host,
//! Connection, Content-Length, Transfer-Encoding, TE, Keep-Alive, Expect, Upgrade), skipping any whose value is
//! empty. Then it copies every entry of `headers_in` unless `ngx_hash_find(headers_hash, entry.hash, name)`
//! finds the name. A visible entry's hash is its name's hash, so a configured name is replaced by its line. A
//! hidden entry (`hash = 0`) is looked up in bucket 0 of that hash table: it is copied as it is unless its
//! name happens to sit in bucket 0, which depends on the table size nginx picked (`ngx_hash_init`).
//!
//! `$http_NAME` is evaluated as nginx does: `$http_cookie` joins the `Cookie` chain with "; ",
//! `$http_x_forwarded_for` its chain with ", ", `$http_host`, `$http_user_agent`, `$http_referer` and
//! `$http_via` read the built-in pointer, any other name joins the visible entries of that name with ", ".
//! Other variables (`$proxy_host` ...) and nginx's default lines are transport details host-sim does not model:
//! they are not sent (they still count in the hash table).

use crate::headers::HeaderMap;

/// One `proxy_set_header NAME VALUE;` line: a literal value or `$http_<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySetHeader {
    pub name: String,
    pub value: String,
}

const DEFAULTS: &[(&str, &str)] = &[
    ("Host", "$proxy_host"),
    ("Connection", "close"),
    ("Content-Length", "$proxy_internal_body_length"),
    ("Transfer-Encoding", "$proxy_internal_chunked"),
    ("TE", ""),
    ("Keep-Alive", ""),
    ("Expect", ""),
    ("Upgrade", ""),
];

/// `proxy_headers_hash_max_size` and `proxy_headers_hash_bucket_size` defaults.
const HASH_MAX_SIZE: u64 = 512;
const HASH_BUCKET_SIZE: u64 = 64;

/// `ngx_hash_key_lc` (64-bit `ngx_uint_t`).
pub fn hash_key_lc(name: &str) -> u64 {
    name.bytes().fold(0u64, |key, c| key.wrapping_mul(31).wrapping_add(c.to_ascii_lowercase() as u64))
}

fn elt_size(name: &str) -> u64 {
    8 + (name.len() as u64 + 2).div_ceil(8) * 8
}

/// The bucket count `ngx_hash_init` picks for these names.
fn hash_size(names: &[String]) -> u64 {
    let bucket = HASH_BUCKET_SIZE - 8;
    let start = (names.len() as u64 / (bucket / 16)).max(1);
    'size: for size in start..=HASH_MAX_SIZE {
        let mut test = vec![0u64; size as usize];
        for name in names {
            let key = (hash_key_lc(name) % size) as usize;
            let len = test[key] + elt_size(name);
            if len > bucket {
                continue 'size;
            }
            test[key] = len;
        }
        return size;
    }
    HASH_MAX_SIZE
}

/// The merged `proxy_set_header` list: the configured lines, then the defaults they do not override.
fn merged(sets: &[ProxySetHeader]) -> Vec<(String, String)> {
    let mut lines: Vec<(String, String)> = sets.iter().map(|s| (s.name.clone(), s.value.clone())).collect();
    for (name, value) in DEFAULTS {
        if !lines.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            lines.push((name.to_string(), value.to_string()));
        }
    }
    lines
}

/// `$http_<var>` for the request, `None` when not found.
fn http_variable(map: &HeaderMap, var: &str) -> Option<String> {
    let builtins = map.builtins.as_ref();
    let joined = |indexes: &[usize], sep: &str| {
        let values: Vec<String> = indexes.iter().map(|i| String::from_utf8_lossy(&map.entries[*i].value).into_owned()).collect();
        (!values.is_empty()).then(|| values.join(sep))
    };
    match var {
        "cookie" => builtins.and_then(|b| b.chain("cookie")).and_then(|c| joined(c, "; ")),
        "x_forwarded_for" => builtins.and_then(|b| b.chain("x-forwarded-for")).and_then(|c| joined(c, ", ")),
        "host" | "user_agent" | "referer" | "via" => {
            let name = var.replace('_', "-");
            builtins.and_then(|b| b.pointer(&name)).and_then(|i| joined(&[i], ""))
        }
        _ => {
            let indexes: Vec<usize> = map
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !e.hidden && !e.key.starts_with(':') && e.key.replace('-', "_") == var)
                .map(|(i, _)| i)
                .collect();
            joined(&indexes, ", ")
        }
    }
}

/// The header lines nginx sends upstream (host-sim's pseudo-headers first, unchanged).
pub fn upstream_headers(map: &HeaderMap, sets: &[ProxySetHeader]) -> Vec<(String, String)> {
    let lines = merged(sets);
    let names: Vec<String> = lines.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    let size = hash_size(&names);
    let in_hash = |hash: u64, name: &str| names.iter().any(|n| n == name && hash_key_lc(n) % size == hash % size);
    let mut out: Vec<(String, String)> = map
        .entries
        .iter()
        .filter(|e| e.key.starts_with(':'))
        .map(|e| (e.key.clone(), String::from_utf8_lossy(&e.value).into_owned()))
        .collect();
    // The defaults (Host, Connection, ...) are transport details host-sim leaves out; they only shape the hash.
    for ProxySetHeader { name, value } in sets {
        let value = match value.strip_prefix("$http_") {
            Some(var) => http_variable(map, var).unwrap_or_default(),
            None if value.starts_with('$') => continue,
            None => value.clone(),
        };
        if !value.is_empty() {
            out.push((name.to_ascii_lowercase(), value));
        }
    }
    for e in map.entries.iter().filter(|e| !e.key.starts_with(':')) {
        let hash = if e.hidden { 0 } else { hash_key_lc(&e.key) };
        if in_hash(hash, &e.key) {
            continue;
        }
        out.push((e.key.clone(), String::from_utf8_lossy(&e.value).into_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nginx::headers::{init_request, write, Mode};

    fn line(name: &str) -> ProxySetHeader {
        ProxySetHeader { name: name.to_string(), value: format!("$http_{}", name.to_ascii_lowercase().replace('-', "_")) }
    }

    #[test]
    fn hash_key_is_nginx_s() {
        assert_eq!(hash_key_lc("Host"), hash_key_lc("host"));
        assert_eq!(hash_key_lc("ab"), 97 * 31 + 98);
    }

    #[test]
    fn set_lines_replace_visible_entries_and_drop_empty_values() {
        let mut map = HeaderMap::from_pairs([(":path", "/"), ("authorization", "Bearer t"), ("x-other", "1")]);
        init_request(&mut map);
        write(&mut map, "authorization", b"", Mode::Set);
        let out = upstream_headers(&map, &[line("Authorization")]);
        assert_eq!(out, vec![(":path".to_string(), "/".to_string()), ("x-other".to_string(), "1".to_string())]);
    }

    #[test]
    fn without_set_lines_hidden_entries_are_still_sent() {
        let mut map = HeaderMap::from_pairs([("x-a", "1")]);
        init_request(&mut map);
        write(&mut map, "x-a", b"", Mode::Remove);
        assert_eq!(upstream_headers(&map, &[]), vec![("x-a".to_string(), "1".to_string())]);
    }
}
