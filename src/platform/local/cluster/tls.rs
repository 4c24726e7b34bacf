//! The cluster's certificates on this machine: a CA per cluster, and a server certificate per
//! instance that it signs, for 127.0.0.1 and localhost (where every instance listens and what
//! every URI names), so clients and replicas can ask for `sslmode=verify-full`.
//!
//! The CA's certificate is `<cluster>/ca.crt`, readable by anyone who may connect; its key is
//! in `secrets/`, pgdeck's alone: the database account, which reads its own server key, can
//! sign nothing. Server certificates live in the instance's directory, owned by the database
//! account with mode 0600 (PostgreSQL refuses a key others can read), written without
//! following whatever the account left under the name. A server certificate is issued again
//! when it is missing, unreadable, signed by another CA, or has less than [`RENEW_BEFORE_DAYS`]
//! left; PostgreSQL loads it on the reload that follows.
//!
//! With `spec.customTLSSecret` the instances serve the DBA's certificate instead, checked first
//! (`plan::custom_tls`), and `ca.crt` holds its CA after pgdeck's own, so everything that
//! trusts the cluster's CA (clients, replicas, pgBouncer, standbys) trusts it too. Likewise
//! `spec.proxy.pgBouncer.customTLSSecret` for what pgBouncer presents to its clients. With
//! `spec.customReplicationTLSSecret` members present that certificate when they replicate or
//! rewind (TLS checks it against the same CAs; the replication user still signs in with its
//! password). A changed Secret is picked up at the next pass: the files change, and PostgreSQL
//! reloads them without a restart.

use k8s_openapi::api::core::v1::Secret;
use rcgen::{Issuer, KeyPair};

use super::super::account::Account;
use super::super::files::{AtPath, read_regular, write_atomic, write_if_changed};
use super::super::home::{ClusterDir, InstanceDir};
use super::super::objects::ObjectStore;
use super::secrets::ensure_private_dir;
use crate::api::PostgresCluster;
use crate::plan::certificates;
use crate::plan::custom_tls::{self, FILES, Material, Use};
use crate::platform::PlatformError;

/// Years a server certificate is valid.
const SERVER_YEARS: i16 = 1;
/// A server certificate with fewer days left than this is issued again.
const RENEW_BEFORE_DAYS: i64 = 30;
/// The names every instance's certificate carries: the address it listens on, and its name.
const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// The cluster's CA, ready to sign.
pub struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// The CA of cluster `ns/name`, made (and stored) when it has none; `ca.crt` holds its
    /// certificate followed by the `custom` certificates' CAs.
    pub fn ensure(
        dir: &ClusterDir,
        ns: &str,
        name: &str,
        custom: Option<&Custom>,
    ) -> Result<Ca, PlatformError> {
        let params = || certificates::ca(format!("pgdeck CA for {ns}/{name}"));
        let (cert_path, key_path) = (dir.ca_cert(), dir.ca_key());
        let stored = std::fs::read_to_string(&cert_path)
            .ok()
            .zip(std::fs::read_to_string(&key_path).ok())
            .and_then(|(pem, key)| Some((own(&pem)?, KeyPair::from_pem(&key).ok()?)));
        let (pem, key) = match stored {
            Some(stored) => stored,
            None => {
                let key = KeyPair::generate().map_err(failed)?;
                let pem = params().self_signed(&key).map_err(failed)?.pem();
                // The key first: a certificate on disk always has its key beside it.
                ensure_private_dir(&dir.secrets())?;
                write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600).at(&key_path)?;
                (pem, key)
            }
        };
        let mut bundle = pem.clone().into_bytes();
        for m in custom.iter().flat_map(|c| c.materials()) {
            bundle.extend_from_slice(&m.ca);
            if !m.ca.ends_with(b"\n") {
                bundle.push(b'\n');
            }
        }
        write_if_changed(&cert_path, &bundle, 0o644, None).at(&cert_path)?;
        Ok(Ca {
            pem,
            issuer: Issuer::new(params(), key),
        })
    }

    /// Keep the instance's server certificate current (see the module's documentation); says
    /// whether it wrote a new one.
    pub fn ensure_server(
        &self,
        inst: &InstanceDir,
        name: &str,
        account: &Account,
    ) -> Result<bool, PlatformError> {
        let (cert_path, key_path) = (inst.tls_cert(), inst.tls_key());
        let current = read_regular(&cert_path)
            .ok()
            .flatten()
            .is_some_and(|(pem, _)| signed_and_current(&pem, self.pem.as_bytes()));
        if current && read_regular(&key_path).ok().flatten().is_some() {
            return Ok(false);
        }
        let (cert, key) =
            certificates::issue(name, &SERVER_NAMES, SERVER_YEARS, &self.issuer).map_err(failed)?;
        // The key first, so PostgreSQL never pairs the new certificate with the old key.
        write_if_changed(&key_path, key.as_bytes(), 0o600, Some(account)).at(&key_path)?;
        write_if_changed(&cert_path, cert.as_bytes(), 0o644, Some(account)).at(&cert_path)?;
        tracing::info!(instance = name, "issued a server certificate");
        Ok(true)
    }
}

/// pgdeck's own CA certificate: the first of `ca.crt` (PEM).
fn own(bundle: &str) -> Option<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let at = bundle.find(END)?;
    Some(format!("{}\n", &bundle[..at + END.len()]))
}

/// The DBA's certificates for a cluster, checked.
pub struct Custom {
    server: Option<Material>,
    replication: Option<Material>,
    pooler: Option<Material>,
}

impl Custom {
    /// `spec.customTLSSecret`, `spec.customReplicationTLSSecret` and
    /// `spec.proxy.pgBouncer.customTLSSecret` from the home's Secrets; `None` without any. An error names the field and what is wrong, and nothing of
    /// the cluster's certificates changes.
    pub fn read(
        objects: &ObjectStore,
        cluster: &PostgresCluster,
    ) -> Result<Option<Custom>, PlatformError> {
        let read = |field: &str, projection, purpose| {
            let lookup = |name: &str| {
                (objects.get::<Secret>(cluster.namespace(), name)).map_err(|e| e.to_string())
            };
            let [cert, key, ca] = custom_tls::projected(field, projection, lookup, &FILES)
                .map_err(PlatformError::Operator)?
                .try_into()
                .expect("one file for each path");
            let m = Material { cert, key, ca };
            custom_tls::check(field, &m, purpose)
                .map_err(|e| PlatformError::Operator(e.to_string()))?;
            Ok::<_, PlatformError>(m)
        };
        let names = Use::Server {
            names: &SERVER_NAMES,
        };
        let custom = Custom {
            server: (cluster.spec.custom_tls_secret.as_ref())
                .map(|s| read("spec.customTLSSecret", s, names))
                .transpose()?,
            replication: (cluster.spec.custom_replication_tls_secret.as_ref())
                .map(|r| read("spec.customReplicationTLSSecret", r, Use::Replication))
                .transpose()?,
            pooler: (cluster.spec.proxy.as_ref())
                .and_then(|p| p.pg_bouncer.custom_tls_secret.as_ref())
                .map(|s| read("spec.proxy.pgBouncer.customTLSSecret", s, names))
                .transpose()?,
        };
        let any = custom.materials().next().is_some();
        Ok(any.then_some(custom))
    }

    /// Whether the instances serve the DBA's certificate (else the CA issues theirs).
    pub fn serves(&self) -> bool {
        self.server.is_some()
    }

    fn materials(&self) -> impl Iterator<Item = &Material> {
        self.server
            .iter()
            .chain(&self.replication)
            .chain(&self.pooler)
    }

    /// pgBouncer's certificate and key as the Secret has them, written into its directory as
    /// an instance's are; says whether a file changed. `None` when the CA issues its own.
    pub fn install_pooler(
        &self,
        dir: &InstanceDir,
        account: &Account,
    ) -> Option<Result<bool, PlatformError>> {
        let m = self.pooler.as_ref()?;
        let files = [
            (dir.tls_key(), &m.key, 0o600),
            (dir.tls_cert(), &m.cert, 0o644),
        ];
        Some(write_all(files, account))
    }

    /// The instance's server certificate and key as the Secret has them, and the replication
    /// certificate's beside them (each when there is one); says whether a file changed.
    pub fn install(&self, inst: &InstanceDir, account: &Account) -> Result<bool, PlatformError> {
        let mut files = Vec::new();
        if let Some(s) = &self.server {
            files.extend([
                (inst.tls_key(), &s.key, 0o600),
                (inst.tls_cert(), &s.cert, 0o644),
            ]);
        }
        if let Some(r) = &self.replication {
            let [cert, key] = inst.replication_tls();
            files.extend([(key, &r.key, 0o600), (cert, &r.cert, 0o644)]);
        }
        write_all(files, account)
    }

    /// The replication certificate and key members present, when there is one.
    pub fn replication_client(&self, inst: &InstanceDir) -> Option<(String, String)> {
        let [cert, key] = inst.replication_tls().map(|p| p.display().to_string());
        self.replication.as_ref().map(|_| (cert, key))
    }
}

/// Write `files` as the account's own, never through a link left under their names; says
/// whether one changed. Each key comes before its certificate, so a server never pairs a new
/// certificate with the old key.
fn write_all<'a>(
    files: impl IntoIterator<Item = (std::path::PathBuf, &'a Vec<u8>, u32)>,
    account: &Account,
) -> Result<bool, PlatformError> {
    let mut changed = false;
    for (path, bytes, mode) in files {
        changed |= write_if_changed(&path, bytes, mode, Some(account)).at(&path)?;
    }
    Ok(changed)
}

/// Whether the certificate in `pem` was signed by the CA in `ca_pem` and has more than
/// [`RENEW_BEFORE_DAYS`] left.
fn signed_and_current(pem: &[u8], ca_pem: &[u8]) -> bool {
    use x509_parser::pem::parse_x509_pem;
    let (Ok((_, leaf)), Ok((_, ca))) = (parse_x509_pem(pem), parse_x509_pem(ca_pem)) else {
        return false;
    };
    let (Ok(leaf), Ok(ca)) = (leaf.parse_x509(), ca.parse_x509()) else {
        return false;
    };
    leaf.verify_signature(Some(ca.public_key())).is_ok()
        && leaf
            .validity()
            .time_to_expiration()
            .is_some_and(|left| left.whole_days() > RENEW_BEFORE_DAYS)
}

fn failed(e: rcgen::Error) -> PlatformError {
    PlatformError::Operator(format!("cannot generate a certificate: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_certificate_is_kept_until_another_ca_or_its_expiry_asks_for_a_new_one() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = ClusterDir(tmp.path().join("hippo"));
        let inst = dir.instance("hippo-a");
        std::fs::create_dir_all(inst.path()).unwrap();
        let account = Account::service().unwrap();
        let ca = Ca::ensure(&dir, "default", "hippo", None).unwrap();
        assert!(ca.ensure_server(&inst, "hippo-a", &account).unwrap());
        assert!(!ca.ensure_server(&inst, "hippo-a", &account).unwrap());
        let key = std::fs::metadata(inst.tls_key()).unwrap();
        assert_eq!(key.mode() & 0o777, 0o600);
        assert_eq!(key.uid(), account.uid.as_raw());
        let ca_key = std::fs::metadata(dir.ca_key()).unwrap();
        assert_eq!(ca_key.mode() & 0o777, 0o600);
        assert_eq!(ca_key.uid(), nix::unistd::geteuid().as_raw());

        // The same CA when read back; a new one when it is gone, and the server's then too.
        let again = Ca::ensure(&dir, "default", "hippo", None).unwrap();
        assert!(!again.ensure_server(&inst, "hippo-a", &account).unwrap());
        std::fs::remove_file(dir.ca_key()).unwrap();
        let new = Ca::ensure(&dir, "default", "hippo", None).unwrap();
        assert_ne!(new.pem, ca.pem);
        assert!(new.ensure_server(&inst, "hippo-a", &account).unwrap());

        // One that expires within RENEW_BEFORE_DAYS is renewed.
        let key = KeyPair::generate().unwrap();
        let mut params = certificates::leaf("hippo-a", vec!["127.0.0.1".into()], 1).unwrap();
        params.not_after =
            rcgen::date_time_ymd(2000, 1, 1) + std::time::Duration::from_secs(86_400 * 365 * 100);
        let far = params.signed_by(&key, &new.issuer).unwrap();
        assert!(signed_and_current(far.pem().as_bytes(), new.pem.as_bytes()));
        let soon = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .checked_add(jiff::Span::new().days(10))
            .unwrap();
        params.not_after =
            rcgen::date_time_ymd(soon.year().into(), soon.month() as u8, soon.day() as u8);
        let soon = params.signed_by(&key, &new.issuer).unwrap();
        assert!(!signed_and_current(
            soon.pem().as_bytes(),
            new.pem.as_bytes()
        ));
        assert!(!signed_and_current(far.pem().as_bytes(), ca.pem.as_bytes()));
    }
}
