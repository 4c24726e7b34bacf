//! Reading manifest files named on the command line.

use std::io::Read;
use std::path::Path;

use super::Failure;

/// The text of `path`, or of standard input for `-`.
pub fn read_manifest_source(path: &Path) -> Result<String, Failure> {
    let result = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    };
    result.map_err(|e| Failure {
        code: 1,
        message: format!("{}: cannot read: {e}", path.display()),
    })
}
