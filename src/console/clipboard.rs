//! Copying to the clipboard with OSC 52: the terminal does it, so it works over SSH and in tmux
//! (with `set-clipboard on`) without any clipboard tool installed.

use std::io::Write;

use base64::Engine;

pub fn copy(text: &str) -> std::io::Result<()> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = std::io::stdout().lock();
    write!(out, "\x1b]52;c;{encoded}\x07")?;
    out.flush()
}
