//! `*`/`?` globs for authorization rules (subjects, emails).

/// Whether `text` matches `pattern`, where `*` matches any run of characters
/// (including none) and `?` exactly one; everything else matches itself,
/// case-sensitively (callers lower-case emails on both sides).
///
/// Greedy with a single backtrack point: at most O(pattern × text) steps,
/// never exponential; config bounds patterns to 256 characters, so the cost
/// is linear in the claim's length.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    // Position of the last `*` seen and the text position it resumes from.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry.
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn literals_and_wildcards() {
        let cases = [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything", true),
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("abc", "ABC", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("?", "é", true),
            ("user-*", "user-42", true),
            ("user-*", "admin-42", false),
            ("*@example.com", "alice@example.com", true),
            ("*@example.com", "alice@example.com.evil", false),
            ("*@example.com", "alice@evilexample.com", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a*b", "abab", true),
            ("**", "x", true),
            ("*a", "bbba", true),
            ("*a", "bbbab", false),
            ("a*", "a", true),
            ("a*?", "a", false),
            ("*?*", "x", true),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob_match(pattern, text), want, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn adversarial_input_stays_fast() {
        // Exponential backtracking would never finish here.
        let text = "a".repeat(20_000);
        let pattern = format!("{}b", "*a".repeat(100));
        assert!(!glob_match(&pattern, &text));
        assert!(glob_match(&"*a".repeat(100), &text));
    }
}
