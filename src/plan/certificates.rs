//! What pgdeck's certificates say, on both platforms: a CA per cluster, and leaves it signs
//! (servers' and clients'). Keys and signing are rcgen's; where the files go is the platform's.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
};

/// Years a CA is valid.
pub const CA_YEARS: i16 = 10;

/// A CA named `common_name`, valid for [`CA_YEARS`].
pub fn ca(common_name: String) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut p, CA_YEARS);
    p
}

/// A server's and client's certificate for `common_name` and `sans` (host names or IP
/// addresses), valid for `years`.
pub fn leaf(
    common_name: &str,
    sans: Vec<String>,
    years: i16,
) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(sans)?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    validity(&mut p, years);
    Ok(p)
}

/// A new key and a certificate for it (see [`leaf`]) that `issuer` signs: (certificate, key),
/// PEM.
pub fn issue(
    common_name: &str,
    sans: &[&str],
    years: i16,
    issuer: &rcgen::Issuer<'_, impl rcgen::SigningKey>,
) -> Result<(String, String), rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let sans = sans.iter().map(|s| s.to_string()).collect();
    let cert = leaf(common_name, sans, years)?.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// From yesterday (clocks drift) for `years`.
fn validity(p: &mut CertificateParams, years: i16) {
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date();
    let from = today.yesterday().unwrap_or(today);
    let until = from
        .checked_add(jiff::Span::new().years(years))
        .unwrap_or(from);
    let ymd = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(d.year().into(), d.month() as u8, d.day() as u8)
    };
    p.not_before = ymd(from);
    p.not_after = ymd(until);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_name_their_addresses_and_outlive_a_day() {
        let p = leaf("hippo", vec!["127.0.0.1".into(), "localhost".into()], 1).unwrap();
        assert!(
            p.subject_alt_names
                .iter()
                .any(|s| matches!(s, rcgen::SanType::IpAddress(_))),
            "127.0.0.1 is an IP address SAN, as verify-full to an address needs"
        );
        assert!(p.not_after - p.not_before > std::time::Duration::from_secs(86_400 * 300));
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::new(ca("test CA".into()), &key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        assert!(p.signed_by(&leaf_key, &issuer).is_ok());
    }
}
