//! Envoy-style header maps (ordered multimap, lower-cased keys) and the proxy-wasm pairs wire format.

/// Ordered multimap; keys are lower-cased on every write, as `Http::LowerCaseString` does. On the nginx profile an
/// entry can also be *hidden*: ngx_wasm_module "removes" a header by zeroing its hash, which hides it from the
/// filter's pairs list but not from the single-value getter, nor from what nginx sends (see `crate::nginx::headers`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    pub(crate) entries: Vec<Entry>,
    /// nginx request headers: the `headers_in` pointers of nginx's built-in headers.
    pub(crate) builtins: Option<crate::nginx::headers::Builtins>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub hidden: bool,
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_pairs<K: AsRef<str>, V: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut map = Self::new();
        for (k, v) in pairs {
            map.add(k.as_ref(), v.as_ref());
        }
        map
    }

    /// Entries the filter can see (all of them, except hidden ones on nginx).
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| !e.hidden).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// First value only, as Envoy's `getHeaderMapValue` does (and ngx_wasm_module's, which also finds hidden
    /// entries).
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        let key = key.to_ascii_lowercase();
        self.entries.iter().find(|e| e.key == key).map(|e| e.value.as_slice())
    }

    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn add(&mut self, key: &str, value: &[u8]) {
        self.entries.push(Entry { key: key.to_ascii_lowercase(), value: value.to_vec(), hidden: false });
    }

    /// `setCopy`: replaces every value of the key (appends when absent).
    pub fn replace(&mut self, key: &str, value: &[u8]) {
        let key = key.to_ascii_lowercase();
        match self.entries.iter().position(|e| e.key == key) {
            Some(first) => {
                self.entries[first].value = value.to_vec();
                let mut index = 0;
                self.entries.retain(|e| {
                    index += 1;
                    index - 1 == first || e.key != key
                });
            }
            None => self.add(&key, value),
        }
    }

    pub fn remove(&mut self, key: &str) {
        let key = key.to_ascii_lowercase();
        self.entries.retain(|e| e.key != key);
    }

    /// Visible entries.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().filter(|e| !e.hidden).map(|e| (e.key.as_str(), e.value.as_slice()))
    }

    /// Visible entries as strings.
    pub fn to_string_pairs(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned())).collect()
    }

    /// Every entry, hidden ones included, with its hidden flag.
    pub(crate) fn all_entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Proxy-wasm pairs encoding of the visible entries: count, (key_len, value_len)*, then `key\0value\0`*.
    pub fn serialize(&self) -> Vec<u8> {
        serialize_pairs(self.iter())
    }
}

/// Proxy-wasm pairs encoding: count, (key_len, value_len)*, then `key\0value\0`*; nothing for no pairs.
pub fn serialize_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let pairs: Vec<(&str, &[u8])> = pairs.collect();
    if pairs.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in &pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in &pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

const PAIRS_MAX_BYTES: usize = 1 << 20;
const PAIRS_MAX_COUNT: usize = 1024;

/// Parses guest pairs like cpp-host `toPairs`: malformed, oversized or too many pairs yield an empty list.
pub fn parse_pairs(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    try_parse_pairs(data).unwrap_or_default()
}

fn try_parse_pairs(data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if data.is_empty() || data.len() > PAIRS_MAX_BYTES {
        return None;
    }
    let u32_at = |at: usize| -> Option<usize> {
        let bytes = data.get(at..at + 4)?;
        Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
    };
    let count = u32_at(0)?;
    if count > PAIRS_MAX_COUNT {
        return None;
    }
    let mut sizes = Vec::with_capacity(count);
    for i in 0..count {
        sizes.push((u32_at(4 + i * 8)?, u32_at(8 + i * 8)?));
    }
    let mut at = 4 + count * 8;
    let mut pairs = Vec::with_capacity(count);
    for (klen, vlen) in sizes {
        let key = data.get(at..at + klen)?;
        at += klen + 1;
        let value = data.get(at..at + vlen)?;
        at += vlen + 1;
        if at > data.len() {
            return None;
        }
        pairs.push((String::from_utf8_lossy(key).into_owned(), value.to_vec()));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_multimap_rules() {
        let mut map = HeaderMap::from_pairs([("A", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(map.get("a"), Some(&b"1"[..]));
        let parsed = parse_pairs(&map.serialize());
        assert_eq!(parsed.len(), 3);
        map.replace("A", b"x");
        assert_eq!(map.to_string_pairs(), vec![("a".into(), "x".into()), ("b".into(), "2".into())]);
        map.remove("B");
        assert_eq!(map.len(), 1);
        assert!(HeaderMap::new().serialize().is_empty());
        assert!(parse_pairs(&[1, 0]).is_empty());
    }
}
