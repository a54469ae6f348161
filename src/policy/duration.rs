//! Proto-JSON durations ("5s", "1.5s", "0.250s"), the form Envoy's jwt_authn uses.

/// Parses a proto-JSON duration into milliseconds. Negative values, missing units and more
/// than nine fractional digits are refused; sub-millisecond remainders round up so "0.0001s"
/// never silently becomes zero.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    let number = text
        .strip_suffix('s')
        .ok_or_else(|| format!("{text:?} is not a duration: use seconds with an `s` suffix, e.g. \"5s\""))?;
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (!frac.is_empty() && !digits(frac)) || frac.len() > 9 || number.ends_with('.') {
        return Err(format!("{text:?} is not a duration: use seconds with an `s` suffix, e.g. \"5s\""));
    }
    let secs: u64 = whole.parse().map_err(|_| format!("{text:?} is too large"))?;
    let mut nanos: u64 = 0;
    if !frac.is_empty() {
        let padded = format!("{frac:0<9}");
        nanos = padded.parse().map_err(|_| format!("{text:?} is not a duration"))?;
    }
    secs.checked_mul(1000)
        .and_then(|ms| ms.checked_add(nanos.div_ceil(1_000_000)))
        .filter(|ms| *ms <= 315_576_000_000_000)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proto_json_durations() {
        assert_eq!(parse_millis("5s"), Ok(5000));
        assert_eq!(parse_millis("1.5s"), Ok(1500));
        assert_eq!(parse_millis("0.250s"), Ok(250));
        assert_eq!(parse_millis("0s"), Ok(0));
        assert_eq!(parse_millis("0.0001s"), Ok(1));
        assert_eq!(parse_millis("86400s"), Ok(86_400_000));
    }

    #[test]
    fn refuses_bad_durations() {
        for bad in
            ["5", "5m", "-1s", "s", "1.s", ".5s", "1.2.3s", "1.0000000001s", "1e3s", " 5s", "99999999999999999999s"]
        {
            assert!(parse_millis(bad).is_err(), "{bad}");
        }
    }
}
