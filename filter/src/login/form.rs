//! `application/x-www-form-urlencoded` encoding and decoding (WHATWG URL
//! §5), for query strings and token endpoint bodies.

/// Encodes one name or value: ASCII alphanumerics and `*-._` stay, space
/// becomes `+`, every other byte is `%XX`.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `name=value&...` for `pairs`.
pub fn serialize(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decoded pairs of a query string or form body (invalid UTF-8 is replaced,
/// malformed escapes are kept literally, as browsers do).
pub fn parse(input: &str) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_edge_cases() {
        let s = serialize(&[("a b", "x&y=z/é"), ("k", "")]);
        assert_eq!(s, "a+b=x%26y%3Dz%2F%C3%A9&k=");
        assert_eq!(
            parse(&s),
            vec![
                ("a b".into(), "x&y=z/é".into()),
                ("k".into(), String::new())
            ]
        );
        assert_eq!(
            parse("a=%zz&b=%4&&c"),
            vec![
                ("a".into(), "%zz".into()),
                ("b".into(), "%4".into()),
                ("c".into(), String::new())
            ]
        );
        assert_eq!(encode("s3cr&t:x"), "s3cr%26t%3Ax");
    }
}
