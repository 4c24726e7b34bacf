//! Pure rendering from a manifest: instance names, Patroni and pgBackRest configuration.
//! Shared by both platforms; nothing here does IO.

pub mod dynamic;
pub mod patroni;
pub mod pgbackrest;

use rand::RngExt;

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
