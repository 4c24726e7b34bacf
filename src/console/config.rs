//! The console's settings: `<config dir>/config.yaml` (`~/.config/pgdeck/config.yaml`, or
//! `$PGDECK_CONFIG_DIR/config.yaml`). A missing file means the defaults; an invalid one is an
//! error naming the file and the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    refresh_interval: Option<serde_yaml::Value>,
    namespace: Option<String>,
    theme: Option<String>,
    read_only: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// How often the open cluster's Patroni is asked.
    pub refresh: Duration,
    /// The namespace to show; every namespace when `None`.
    pub namespace: Option<String>,
    pub theme: Option<String>,
    pub read_only: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            refresh: Duration::from_secs(2),
            namespace: None,
            theme: None,
            read_only: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {rule}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub rule: String,
}

/// Where the config file and user themes live.
pub fn dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PGDECK_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    directories::ProjectDirs::from("dev", "pgdeck", "pgdeck").map(|d| d.config_dir().to_path_buf())
}

pub fn load(dir: Option<&Path>) -> Result<Config, ConfigError> {
    let Some(path) = dir.map(|d| d.join("config.yaml")).filter(|p| p.exists()) else {
        return Ok(Config::default());
    };
    let file = path.display().to_string();
    let fail = |key: String, rule: String| ConfigError {
        file: file.clone(),
        key,
        rule,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| fail("(file)".into(), e.to_string()))?;
    let parsed: File =
        match serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(&text)) {
            Ok(f) => f,
            Err(e) => {
                let key = e.path().to_string();
                let rule = e.into_inner().to_string();
                // serde names an unknown key in its message; the path is then the parent.
                let key = match rule.split('`').nth(1) {
                    Some(unknown) if rule.starts_with("unknown field") => unknown.to_string(),
                    _ => key,
                };
                let rule = rule.split(" at line ").next().unwrap_or(&rule).to_string();
                return Err(fail(key, rule));
            }
        };
    let mut config = Config {
        namespace: parsed.namespace,
        theme: parsed.theme,
        read_only: parsed.read_only.unwrap_or(false),
        ..Config::default()
    };
    if let Some(v) = parsed.refresh_interval {
        config.refresh = refresh(&v).map_err(|rule| fail("refreshInterval".into(), rule))?;
    }
    Ok(config)
}

/// `2s`, `1500ms` or a number of seconds; between 1 and 60 seconds.
fn refresh(v: &serde_yaml::Value) -> Result<Duration, String> {
    let d = match v {
        serde_yaml::Value::Number(n) => n.as_f64().map(Duration::from_secs_f64),
        serde_yaml::Value::String(s) => match s.strip_suffix("ms") {
            Some(ms) => ms.trim().parse::<u64>().ok().map(Duration::from_millis),
            None => s
                .strip_suffix('s')
                .unwrap_or(s)
                .trim()
                .parse::<f64>()
                .ok()
                .map(Duration::from_secs_f64),
        },
        _ => None,
    }
    .ok_or_else(|| format!("{v:?} is not a duration like 2s or 1500ms"))?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(60) {
        return Err(format!(
            "must be between 1s and 60s, not {}ms",
            d.as_millis()
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yaml"), text).unwrap();
        load(Some(dir.path()))
    }

    #[test]
    fn reads_every_setting() {
        let c = with("refreshInterval: 1500ms\nnamespace: apps\ntheme: light\nreadOnly: true\n")
            .unwrap();
        assert_eq!(
            c,
            Config {
                refresh: Duration::from_millis(1500),
                namespace: Some("apps".into()),
                theme: Some("light".into()),
                read_only: true
            }
        );
        assert_eq!(
            with("refreshInterval: 3\n").unwrap().refresh,
            Duration::from_secs(3)
        );
        assert_eq!(load(None).unwrap(), Config::default());
    }

    #[test]
    fn an_invalid_file_names_the_key() {
        let e = with("refreshInterval: 0.1s\n").unwrap_err().to_string();
        assert!(
            e.contains("config.yaml: refreshInterval: must be between 1s and 60s"),
            "{e}"
        );
        let e = with("readonly: true\n").unwrap_err().to_string();
        assert!(e.contains("config.yaml: readonly: unknown field"), "{e}");
        let e = with("readOnly: maybe\n").unwrap_err().to_string();
        assert!(e.contains("readOnly: invalid type"), "{e}");
    }
}
