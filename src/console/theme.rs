//! Themes: YAML files of named styles. Built-ins come from `themes/` (compiled in); a file of the
//! same name in `<config dir>/themes/` overrides one, or adds a new theme. A theme may set only
//! some styles: the rest come from the default (dark). A bad file gives a message naming the
//! file and the key, and the default theme.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};

pub const DEFAULT: &str = "dark";
pub const MONOCHROME: &str = "monochrome";

const BUILT_IN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.yaml")),
    ("light", include_str!("../../themes/light.yaml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.yaml"),
    ),
    ("monochrome", include_str!("../../themes/monochrome.yaml")),
];

/// Every style the console draws with.
#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub accent: Style,
    pub border: Style,
    pub title: Style,
    pub header: Style,
    pub footer: Style,
    pub key: Style,
    pub selection: Style,
    pub ok: Style,
    pub warn: Style,
    pub error: Style,
    pub stale: Style,
    pub primary: Style,
    pub sync_standby: Style,
    pub replica: Style,
}

const KEYS: &[&str] = &[
    "text",
    "muted",
    "accent",
    "border",
    "title",
    "header",
    "footer",
    "key",
    "selection",
    "ok",
    "warn",
    "error",
    "stale",
    "primary",
    "sync_standby",
    "replica",
];

#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {rule}")]
pub struct ThemeError {
    pub file: String,
    pub key: String,
    pub rule: String,
}

impl Theme {
    fn slot(&mut self, key: &str) -> Option<&mut Style> {
        Some(match key {
            "text" => &mut self.text,
            "muted" => &mut self.muted,
            "accent" => &mut self.accent,
            "border" => &mut self.border,
            "title" => &mut self.title,
            "header" => &mut self.header,
            "footer" => &mut self.footer,
            "key" => &mut self.key,
            "selection" => &mut self.selection,
            "ok" => &mut self.ok,
            "warn" => &mut self.warn,
            "error" => &mut self.error,
            "stale" => &mut self.stale,
            "primary" => &mut self.primary,
            "sync_standby" => &mut self.sync_standby,
            "replica" => &mut self.replica,
            _ => return None,
        })
    }

    /// The built-in default, which every theme starts from.
    pub fn default_theme() -> Theme {
        let blank = Theme {
            name: DEFAULT.into(),
            text: Style::new(),
            muted: Style::new(),
            accent: Style::new(),
            border: Style::new(),
            title: Style::new(),
            header: Style::new(),
            footer: Style::new(),
            key: Style::new(),
            selection: Style::new(),
            ok: Style::new(),
            warn: Style::new(),
            error: Style::new(),
            stale: Style::new(),
            primary: Style::new(),
            sync_standby: Style::new(),
            replica: Style::new(),
        };
        parse(blank, DEFAULT, BUILT_IN[0].1, "themes/dark.yaml")
            .expect("the built-in dark theme is valid")
    }

    /// The style for an instance's role.
    pub fn role(&self, role: Option<&str>) -> Style {
        match role {
            Some("primary" | "standby_leader") => self.primary,
            Some("sync_standby") => self.sync_standby,
            Some("replica") => self.replica,
            _ => self.muted,
        }
    }
}

/// Names of every theme there is: built-ins and the user's.
pub fn names(user_dir: Option<&Path>) -> Vec<String> {
    let mut names: Vec<String> = BUILT_IN.iter().map(|(n, _)| n.to_string()).collect();
    if let Some(dir) = user_dir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for e in entries.flatten() {
            if let Some(n) = e.file_name().to_str().and_then(|f| f.strip_suffix(".yaml")) {
                names.push(n.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Load theme `name`: the user's file first, else the built-in.
pub fn load(name: &str, user_dir: Option<&Path>) -> Result<Theme, ThemeError> {
    let user_file: Option<PathBuf> = user_dir
        .map(|d| d.join(format!("{name}.yaml")))
        .filter(|p| p.exists());
    let (text, file) = match &user_file {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| ThemeError {
                file: path.display().to_string(),
                key: "(file)".into(),
                rule: e.to_string(),
            })?,
            path.display().to_string(),
        ),
        None => match BUILT_IN.iter().find(|(n, _)| *n == name) {
            Some((_, text)) => (text.to_string(), format!("themes/{name}.yaml")),
            None => {
                return Err(ThemeError {
                    file: format!("{name}.yaml"),
                    key: "(name)".into(),
                    rule: format!("no such theme; themes: {}", names(user_dir).join(", ")),
                });
            }
        },
    };
    parse(Theme::default_theme(), name, &text, &file)
}

fn parse(mut theme: Theme, name: &str, text: &str, file: &str) -> Result<Theme, ThemeError> {
    let fail = |key: &str, rule: String| ThemeError {
        file: file.to_string(),
        key: key.to_string(),
        rule,
    };
    let doc: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| fail("(yaml)", e.to_string()))?;
    let Some(map) = doc.as_mapping() else {
        return Err(fail(
            "(file)",
            "a theme is a mapping of style names to styles".into(),
        ));
    };
    theme.name = name.to_string();
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default().to_string();
        let slot = theme.slot(&key).ok_or_else(|| {
            fail(
                &key,
                format!("unknown style; styles are: {}", KEYS.join(", ")),
            )
        })?;
        *slot = style(v).map_err(|rule| fail(&key, rule))?;
    }
    Ok(theme)
}

/// `green`, or `{ fg: green, bg: "#102030", bold: true }`.
fn style(v: &serde_yaml::Value) -> Result<Style, String> {
    if let Some(s) = v.as_str() {
        return Ok(Style::new().fg(color(s)?));
    }
    let map = v
        .as_mapping()
        .ok_or("a style is a colour or a mapping with fg, bg and modifiers")?;
    let mut out = Style::new();
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        match key {
            "fg" | "bg" => {
                let c = color(
                    v.as_str()
                        .ok_or(format!("{key} must be a colour name, index or #rrggbb"))?,
                )?;
                out = if key == "fg" { out.fg(c) } else { out.bg(c) };
            }
            "bold" | "dim" | "italic" | "reversed" | "underlined" => {
                let on = v.as_bool().ok_or(format!("{key} must be true or false"))?;
                let m = match key {
                    "bold" => Modifier::BOLD,
                    "dim" => Modifier::DIM,
                    "italic" => Modifier::ITALIC,
                    "reversed" => Modifier::REVERSED,
                    _ => Modifier::UNDERLINED,
                };
                if on {
                    out = out.add_modifier(m);
                }
            }
            other => {
                return Err(format!(
                    "{other}: unknown; a style has fg, bg, bold, dim, italic, reversed, underlined"
                ));
            }
        }
    }
    Ok(out)
}

fn color(s: &str) -> Result<Color, String> {
    Color::from_str(s).map_err(|_| {
        format!("{s:?} is not a colour (a name like green, an index 0-255, or #rrggbb)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_theme_loads() {
        for (name, _) in BUILT_IN {
            let t = load(name, None).unwrap();
            assert_eq!(&t.name, name);
        }
        assert_eq!(
            load("monochrome", None).unwrap().primary.fg,
            None,
            "monochrome has no colour"
        );
    }

    #[test]
    fn a_user_theme_overrides_and_fills_in_from_the_default() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dark.yaml"), "primary: magenta\n").unwrap();
        std::fs::write(
            dir.path().join("mine.yaml"),
            "ok: { fg: \"#00ff00\", bold: true }\n",
        )
        .unwrap();
        let dark = load("dark", Some(dir.path())).unwrap();
        assert_eq!(dark.primary, Style::new().fg(Color::Magenta));
        let mine = load("mine", Some(dir.path())).unwrap();
        assert_eq!(mine.ok.fg, Some(Color::Rgb(0, 255, 0)));
        assert_eq!(
            mine.replica,
            Theme::default_theme().replica,
            "unset styles come from the default"
        );
        assert!(names(Some(dir.path())).contains(&"mine".to_string()));
    }

    #[test]
    fn a_bad_file_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.yaml"), "prymary: green\n").unwrap();
        let err = load("bad", Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("bad.yaml: prymary: unknown style"), "{err}");
        std::fs::write(dir.path().join("bad.yaml"), "ok: { fg: gren }\n").unwrap();
        let err = load("bad", Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("bad.yaml: ok: \"gren\" is not a colour"),
            "{err}"
        );
        let err = load("nosuch", Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("no such theme"), "{err}");
    }
}
