//! Duration strings of the plugin configuration: `"0"`, `"1500ms"`, `"60s"`,
//! `"5m"`, `"12h"` and compounds such as `"1m30s"`.

use std::time::Duration;

/// Parses a configuration duration.
///
/// Every number needs a unit except the bare `"0"`; units are `ms`, `s`, `m`
/// and `h`. Signs, fractions, spaces and unknown units are rejected so that a
/// typo never silently becomes a different value.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err("empty duration".to_string());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("expected a number followed by a unit (ms, s, m, h)".to_string());
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" => return Err(format!("missing unit after `{number}` (ms, s, m, h)")),
            _ => return Err(format!("unknown unit `{unit}` (ms, s, m, h)")),
        };
        let value: u64 = number.parse().map_err(|_| "number too large".to_string())?;
        total_ms = value
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| "duration too large".to_string())?;
        rest = after;
    }
    Ok(Duration::from_millis(total_ms))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Result<Duration, String> {
        Ok(Duration::from_millis(v))
    }

    #[test]
    fn accepts_zero_and_every_unit() {
        assert_eq!(parse_duration("0"), ms(0));
        assert_eq!(parse_duration("0s"), ms(0));
        assert_eq!(parse_duration("1500ms"), ms(1500));
        assert_eq!(parse_duration("60s"), ms(60_000));
        assert_eq!(parse_duration("5m"), ms(300_000));
        assert_eq!(parse_duration("12h"), ms(43_200_000));
    }

    #[test]
    fn accepts_compounds() {
        assert_eq!(parse_duration("1m30s"), ms(90_000));
        assert_eq!(parse_duration("1h1m1s1ms"), ms(3_661_001));
        assert_eq!(parse_duration("2s500ms"), ms(2_500));
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "", " ", "60", "-5s", "+5s", "5", "1.5s", "6o s", "60 s", " 60s", "60s ", "10d",
            "10sec", "s", "ms", "1m30", "0ms0", "00",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn error_names_the_problem() {
        assert!(parse_duration("10d")
            .unwrap_err()
            .contains("unknown unit `d`"));
        assert!(parse_duration("60").unwrap_err().contains("missing unit"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
    }

    #[test]
    fn rejects_overflow() {
        assert!(parse_duration("99999999999999999999999s").is_err());
        assert!(parse_duration(&format!("{}h", u64::MAX / 1000)).is_err());
        assert!(parse_duration(&format!("{}ms{}ms", u64::MAX, 1)).is_err());
    }
}
