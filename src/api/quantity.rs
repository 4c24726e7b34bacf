//! Kubernetes quantities (`500m`, `2Gi`, `1e3`), parsed by kube_quantity.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube_quantity::ParsedQuantity;

/// The quantity's value in base units (cores, bytes), or why it does not parse.
pub fn value(q: &Quantity) -> Result<f64, String> {
    let parsed = ParsedQuantity::try_from(q).map_err(|e| {
        format!(
            "{:?} is not a quantity ({e}); write e.g. 500m, 2, 512Mi, 10Gi",
            q.0
        )
    })?;
    parsed
        .to_bytes_f64()
        .ok_or_else(|| format!("{:?} is out of range", q.0))
}

/// The quantity in bytes, rounded down; `None` when it does not parse.
pub fn bytes(q: &Quantity) -> Option<i64> {
    value(q).ok().map(|v| v as i64)
}

/// `1.5 GiB`: bytes in binary units, as DBAs read volume sizes and lag.
pub fn format_bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if v.abs() >= 100.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn parses_binary_decimal_and_milli() {
        assert_eq!(value(&q("1Gi")).unwrap(), 1073741824.0);
        assert_eq!(value(&q("1G")).unwrap(), 1e9);
        assert_eq!(value(&q("500m")).unwrap(), 0.5);
        assert_eq!(value(&q("2")).unwrap(), 2.0);
    }

    #[test]
    fn refuses_garbage() {
        let err = value(&q("ten gigs")).unwrap_err();
        assert!(err.contains("not a quantity"), "{err}");
    }

    #[test]
    fn formats_bytes_in_binary_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(10 * 1024 * 1024 * 1024), "10.0 GiB");
        assert_eq!(format_bytes(200 * 1024 * 1024), "200 MiB");
    }
}
