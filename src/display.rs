//! How times, sizes and lags read, the same in the CLI and the console.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// `45s`, `12m`, `5h`, `3d`: kubectl's AGE style.
pub fn age(since: &Time, now: jiff::Timestamp) -> String {
    duration(now.as_second() - since.0.as_second())
}

pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Replay lag: `0s`, `1.5s`, `2m`.
pub fn lag_seconds(secs: f64) -> String {
    if secs < 10.0 {
        let s = format!("{secs:.1}");
        format!("{}s", s.trim_end_matches(".0"))
    } else {
        duration(secs as i64)
    }
}

pub use crate::api::quantity::format_bytes as bytes;

/// A user, password or database name as it appears inside a URI.
pub fn uri_component(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_kubectl() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(600), "10m");
        assert_eq!(duration(3 * 3600), "3h");
        assert_eq!(duration(3 * 86400), "3d");
        assert_eq!(lag_seconds(0.0), "0s");
        assert_eq!(lag_seconds(1.25), "1.2s");
        assert_eq!(lag_seconds(125.0), "2m");
    }
}
