//! Programs the console leaves the terminal to: the user's editor for the manifest (`E`, as
//! `kubectl edit` does), and psql (`p`).

use std::io::{BufRead, Write};

use crate::platform::psql::Session;

/// Run psql in this terminal until it exits; what to say back in the console. A failure (psql
/// missing, no connection) waits for enter, so its message is read before the console redraws.
pub fn psql(session: &Session, instance: &str) -> Result<String, String> {
    println!(
        "pgdeck: psql on {instance} as {} (\\q returns to the console)",
        session.user
    );
    let failure = match session.run(&[]) {
        Ok(status) if status.success() => {
            return Ok(format!("psql on {instance} as {} ended", session.user));
        }
        Ok(status) => format!("psql exited with {status}"),
        Err(why) => why,
    };
    print!("pgdeck: {failure}; press enter to return to the console ");
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().lock().read_line(&mut String::new());
    Err(format!("psql on {instance} as {}: {failure}", session.user))
}

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
