//! The console in a terminal, as a person uses it: tmux to type (`send-keys`) and to read the
//! screen (`capture-pane`).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A tmux session running a plain shell, killed on drop.
pub struct Tmux {
    session: String,
}

impl Tmux {
    pub fn start(width: u16, height: u16) -> Tmux {
        // Unique per test too: one test binary may run several terminals at once.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let session = format!("pgdeck-e2e-{}-{n}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .args(["bash", "--norc", "--noprofile"])
            .status()
            .expect("tmux is installed by ./dev test");
        assert!(ok.success());
        let t = Tmux { session };
        t.keys(&["PS1='$ '", "Enter"]);
        t
    }

    /// Press keys, one after another. After Escape comes a pause, as from a person: a terminal
    /// cannot tell Escape followed at once by an arrow's escape sequence from other keys.
    pub fn keys(&self, keys: &[&str]) {
        for key in keys {
            let ok = Command::new("tmux")
                .args(["send-keys", "-t", &self.session, key])
                .status()
                .unwrap();
            assert!(ok.success());
            if *key == "Escape" {
                std::thread::sleep(Duration::from_millis(150));
            }
        }
    }

    /// Type `text` literally (no key names).
    pub fn text(&self, text: &str) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "-l", text])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn alternate_screen(&self) -> bool {
        let out = Command::new("tmux")
            .args(["display", "-p", "-t", &self.session, "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// Wait until the screen satisfies `ok`; panics with the screen after `timeout`.
    pub fn wait(&self, timeout: Duration, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The shell works as usual: a command echoes, and the terminal is in cooked mode.
    pub fn assert_terminal_restored(&self) {
        // The console may still be exiting (a loaded machine is slow to tear down).
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alternate_screen() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            !self.alternate_screen(),
            "still on the alternate screen:\n{}",
            self.screen()
        );
        self.keys(&[
            "clear; echo restored-$((40+2)); stty -a | grep -o -- '-\\?icanon'",
            "Enter",
        ]);
        let s = self.wait(Duration::from_secs(5), "the shell to answer", |s| {
            s.contains("restored-42") && s.contains("icanon")
        });
        assert!(
            s.lines().any(|l| l.trim() == "icanon"),
            "the terminal is left in raw mode (-icanon):\n{s}"
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

/// The table row (not the title) that names `name`.
pub fn row<'a>(screen: &'a str, name: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.starts_with(&format!("│{name}")))
        .unwrap_or("")
}
