//! `E`: edit the manifest in the user's editor, as `kubectl edit` does.

use std::io::Write;

/// Write `yaml` to a temporary file, open it in `$VISUAL`, `$EDITOR` or `vi`, and return the
/// text as saved. The console has left the terminal to the editor meanwhile.
pub fn edit(yaml: &str) -> Result<String, String> {
    let mut file = tempfile::Builder::new()
        .prefix("pgdeck-edit-")
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| format!("cannot create a file to edit: {e}"))?;
    file.write_all(yaml.as_bytes())
        .and_then(|_| file.flush())
        .map_err(|e| format!("cannot write the file to edit: {e}"))?;
    let editor = std::env::var("VISUAL")
        .ok()
        .or_else(|| std::env::var("EDITOR").ok())
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    // `code --wait` and the like: the command, then its own arguments.
    let mut words = editor.split_whitespace();
    let program = words.next().unwrap_or("vi");
    let status = std::process::Command::new(program)
        .args(words)
        .arg(file.path())
        .status()
        .map_err(|e| format!("cannot run the editor {editor:?} (set $EDITOR): {e}"))?;
    if !status.success() {
        return Err(format!(
            "the editor {editor:?} exited with {status}: nothing was applied"
        ));
    }
    std::fs::read_to_string(file.path()).map_err(|e| format!("cannot read the edited file: {e}"))
}
