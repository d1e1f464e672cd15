//! Durations on the command line: `250ms`, `1s`, `1.5s`, `2m`, `0`.

use std::time::Duration;

/// Parses a duration the way every dsys flag writes one.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{s:?} has no unit: write e.g. 250ms, 1s, 2m"))?;
    // Compound forms like `1h30m` or `1m 30s`.
    if s[split..].chars().any(|c| c.is_ascii_digit()) {
        return humantime::parse_duration(s)
            .map_err(|e| format!("{s:?} is not a duration ({e}): write e.g. 250ms, 1s, 1h30m"));
    }
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: write e.g. 250ms, 1s, 2m"))?;
    let secs = match unit.trim() {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (use us, ms, s, m or h)"
            ));
        }
    };
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("{s:?} is too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in ["", "5", "ms", "1x", "-1s", "1.2.3s", "1h30x"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
