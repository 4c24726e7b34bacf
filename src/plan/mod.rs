//! Pure rendering from a manifest: instance names, Patroni and pgBackRest configuration, and
//! the order a restarting change rolls out in. Shared by both platforms; nothing here does IO.

pub mod adopt;
pub mod bootstrap_stall;
pub mod certificates;
pub mod collector_metrics;
pub mod custom_tls;
pub mod dynamic;
pub mod hba;
pub mod init_sql;
pub mod instances;
pub mod monitoring;
pub mod patroni;
pub mod pgbackrest;
pub mod pgbackrest_options;
pub mod pgbouncer;
pub mod resources;
pub mod rollout;
pub mod standby;
pub mod standby_lag;
pub mod standby_slots;
pub mod tablespaces;
pub mod temp_volume;
pub mod verbs;
pub mod wal_gap;

use rand::RngExt;

use crate::api::users::PasswordType;

/// A stable 64-bit FNV-1a digest, as 16 hex digits: the same on every build and platform.
pub fn digest(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// A new instance's name, `<cluster>-<set>-<4 characters>` as PGO names them.
pub fn instance_name(cluster: &str, set: &str) -> String {
    // Consonants and digits only, so suffixes never spell words.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..4)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{cluster}-{set}-{suffix}")
}

/// A new password of `kind`: 24 characters, never ones that need quoting.
pub fn password(kind: PasswordType) -> String {
    // Letters and digits, plus symbols that need no quoting in SQL, shells or URIs.
    const ASCII: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.~+=^";
    const ALPHANUMERIC: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let alphabet = match kind {
        PasswordType::ASCII => ASCII,
        PasswordType::AlphaNumeric => ALPHANUMERIC,
    };
    let mut rng = rand::rng();
    (0..24)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}
