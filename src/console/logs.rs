//! The Logs tab's state: the selected instance's PostgreSQL and Patroni log lines, at most
//! [`MAX_LINES`] of them (the oldest go first), followed live until the user scrolls up
//! (paused where they are, however many lines arrive) and searched with `/`, `n` and `N`.

use std::collections::VecDeque;

use super::activity::Target;
use super::app::{App, Mode};
use super::keys::Action;
use crate::observe::logs::{Chunk, LogLine, Origin};

/// Lines kept: a long-running follow costs at most this many.
pub const MAX_LINES: usize = 10_000;

/// Which log the tab shows (`w` moves on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Both,
    Postgres,
    Patroni,
}

impl Which {
    pub fn next(self) -> Which {
        match self {
            Which::Both => Which::Postgres,
            Which::Postgres => Which::Patroni,
            Which::Patroni => Which::Both,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Which::Both => "PostgreSQL + Patroni",
            Which::Postgres => "PostgreSQL",
            Which::Patroni => "Patroni",
        }
    }

    /// pgdeck's own notes show in every choice.
    fn shows(self, line: &LogLine) -> bool {
        match (self, line.origin) {
            (Which::Both, _) | (_, None) => true,
            (Which::Postgres, Some(o)) => o == Origin::Postgres,
            (Which::Patroni, Some(o)) => o == Origin::Patroni,
        }
    }
}

/// Lines are known by a sequence number that stays theirs while older lines are dropped, so a
/// paused view and the current match stay on their line.
#[derive(Debug)]
pub struct Logs {
    /// The instance shown; `None` until the tab is opened.
    pub target: Option<Target>,
    lines: VecDeque<LogLine>,
    /// The sequence number of `lines[0]`.
    first: u64,
    pub which: Which,
    pub follow: bool,
    /// When paused: the line at the bottom of the view.
    bottom: u64,
    pub search: String,
    /// The line of the current match.
    pub current: Option<u64>,
    /// Whether any lines (or an answer saying there are none) came yet.
    pub received: bool,
    pub error: Option<String>,
    /// The lines of the chosen log, in order: kept up to date as lines come and go, never per
    /// frame.
    shown: Vec<u64>,
}

impl Default for Logs {
    fn default() -> Logs {
        Logs {
            target: None,
            lines: VecDeque::new(),
            first: 0,
            which: Which::Both,
            follow: true,
            bottom: 0,
            search: String::new(),
            current: None,
            received: false,
            error: None,
            shown: Vec::new(),
        }
    }
}

impl Logs {
    /// Start over for another instance.
    pub fn show(&mut self, target: Target) {
        *self = Logs {
            target: Some(target),
            which: self.which,
            ..Logs::default()
        };
    }

    pub fn update(&mut self, result: Result<Chunk, String>) {
        let chunk = match result {
            Ok(chunk) => chunk,
            Err(e) => return self.error = Some(e),
        };
        self.error = None;
        self.received = true;
        if chunk.reset {
            let next = self.first + self.lines.len() as u64;
            self.lines.clear();
            self.shown.clear();
            self.first = next;
            self.current = None;
            self.follow = true;
        }
        for line in chunk.lines {
            let seq = self.first + self.lines.len() as u64;
            if self.which.shows(&line) {
                self.shown.push(seq);
            }
            self.lines.push_back(line);
        }
        let excess = self.lines.len().saturating_sub(MAX_LINES);
        if excess > 0 {
            self.lines.drain(..excess);
            self.first += excess as u64;
            let gone = self.shown.partition_point(|&s| s < self.first);
            self.shown.drain(..gone);
            self.current = self.current.filter(|&c| c >= self.first);
        }
    }

    /// Show another log, keeping the view on the same moment as near as it can.
    pub fn next_log(&mut self) {
        self.which = self.which.next();
        let which = self.which;
        self.shown = (0..self.lines.len())
            .filter(|&i| which.shows(&self.lines[i]))
            .map(|i| self.first + i as u64)
            .collect();
        self.current = self.current.filter(|c| self.shown.binary_search(c).is_ok());
    }

    pub fn len(&self) -> usize {
        self.shown.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    /// The lines to draw in `height` rows, oldest first, with their sequence numbers.
    pub fn window(&self, height: usize) -> impl Iterator<Item = (u64, &LogLine)> {
        let end = self.end().max(height.min(self.shown.len()));
        self.shown[end.saturating_sub(height)..end]
            .iter()
            .map(|&s| (s, &self.lines[(s - self.first) as usize]))
    }

    /// How many lines lie below the view (0 while following).
    pub fn below(&self) -> usize {
        self.shown.len() - self.end()
    }

    /// Where the view ends in `shown` (exclusive).
    fn end(&self) -> usize {
        if self.follow {
            self.shown.len()
        } else {
            self.shown.partition_point(|&s| s <= self.bottom).max(1)
        }
    }

    fn set_end(&mut self, end: usize) {
        self.follow = end >= self.shown.len();
        if let Some(&s) = end.checked_sub(1).and_then(|i| self.shown.get(i)) {
            self.bottom = s;
        }
    }

    /// Scroll by `by` lines (up is negative) in a view of `height` rows: up pauses the follow,
    /// reaching the end resumes it.
    pub fn scroll(&mut self, by: isize, height: usize) {
        let len = self.shown.len();
        if len == 0 {
            return;
        }
        let top = height.clamp(1, len);
        let end = (self.end() as isize).saturating_add(by);
        self.set_end(end.clamp(top as isize, len as isize) as usize);
    }

    /// The oldest lines.
    pub fn top(&mut self, height: usize) {
        self.scroll(isize::MIN / 2, height);
    }

    /// Follow again: the newest lines, and those that come.
    pub fn resume(&mut self) {
        self.follow = true;
    }

    /// Search for `text` (case-insensitive): the newest match becomes the current one.
    pub fn set_search(&mut self, text: &str, height: usize) {
        self.search = text.to_string();
        self.current = None;
        if !self.search.is_empty() {
            self.current = self.shown.iter().rev().copied().find(|&s| self.hit(s));
        }
        self.reveal(height);
    }

    /// The next match below the current one (`forward`) or above it, wrapping around; says
    /// what happened when there is no other.
    pub fn next_match(&mut self, forward: bool, height: usize) -> Result<(), String> {
        if self.search.is_empty() {
            return Err("no search: / searches the log".into());
        }
        // Every line once, from the one after the current match (or the view's end) around
        // to the current match itself.
        let len = self.shown.len();
        let (after, before) = match self.current {
            Some(c) => {
                let at = self.shown.partition_point(|&s| s < c);
                (at + 1, at)
            }
            None => (self.end(), self.end()),
        };
        let order: Box<dyn Iterator<Item = usize>> = if forward {
            Box::new((after..len).chain(0..after.min(len)))
        } else {
            Box::new((0..before.min(len)).rev().chain((before..len).rev()))
        };
        let found = order.map(|i| self.shown[i]).find(|&s| self.hit(s));
        match found {
            Some(s) => {
                self.current = Some(s);
                self.reveal(height);
                Ok(())
            }
            None => Err(format!("no match for {:?}", self.search)),
        }
    }

    /// Whether line `seq` matches the search.
    fn hit(&self, seq: u64) -> bool {
        contains(&self.lines[(seq - self.first) as usize].text, &self.search)
    }

    /// Bring the current match into view.
    fn reveal(&mut self, height: usize) {
        let Some(c) = self.current else { return };
        let pos = self.shown.partition_point(|&s| s < c);
        let end = self.end();
        if pos >= end || pos + height.max(1) < end {
            self.set_end((pos + 1).max(height.min(self.shown.len())));
        }
    }
}

impl App {
    /// The instance the Logs tab follows ([`App::followed`]); its lines start over when
    /// it is another one.
    pub(super) fn follow_logs(&mut self) -> Option<Target> {
        let target = self.followed()?;
        if self.logs.target.as_ref() != Some(&target) {
            self.logs.show(target.clone());
        }
        Some(target)
    }

    /// What a key does on the Logs tab: moving scrolls the log (up pauses the follow, `G`, end
    /// and `f` resume it), `/` searches; false for keys that mean the same as elsewhere.
    pub(super) fn act_on_logs(&mut self, action: Action) -> bool {
        let (logs, page) = (&mut self.logs, self.page.max(1));
        match action {
            Action::Up => logs.scroll(-1, page),
            Action::Down => logs.scroll(1, page),
            Action::PageUp => logs.scroll(-(page as isize), page),
            Action::PageDown => logs.scroll(page as isize, page),
            Action::Top => logs.top(page),
            Action::Bottom => logs.resume(),
            Action::WhichLog => {
                logs.next_log();
                let title = logs.which.title();
                self.say(format!("showing the {title} log"));
            }
            Action::NextMatch | Action::PrevMatch => {
                if let Err(why) = logs.next_match(action == Action::NextMatch, page) {
                    self.warn(why);
                }
            }
            Action::Filter => {
                self.mode = Mode::Filter;
                self.input = logs.search.clone();
            }
            _ => return false,
        }
        true
    }
}

/// Case-insensitive (ASCII) matches of `needle` in `text`: their byte ranges, which the view
/// highlights.
pub fn matches(text: &str, needle: &str) -> Vec<(usize, usize)> {
    if needle.is_empty() {
        return Vec::new();
    }
    let hay = text.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    hay.match_indices(&needle)
        .map(|(i, m)| (i, i + m.len()))
        .collect()
}

fn contains(text: &str, needle: &str) -> bool {
    !matches(text, needle).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(origin: Origin, text: &str) -> LogLine {
        LogLine {
            origin: Some(origin),
            text: text.into(),
        }
    }

    fn chunk(range: std::ops::Range<usize>) -> Result<Chunk, String> {
        Ok(Chunk {
            lines: range
                .map(|i| {
                    let o = if i % 2 == 0 {
                        Origin::Postgres
                    } else {
                        Origin::Patroni
                    };
                    line(o, &format!("line {i}"))
                })
                .collect(),
            reset: false,
        })
    }

    fn texts(l: &Logs, height: usize) -> Vec<String> {
        l.window(height).map(|(_, l)| l.text.clone()).collect()
    }

    #[test]
    fn follows_until_scrolled_up_then_stays_on_its_lines() {
        let mut l = Logs::default();
        l.update(chunk(0..10));
        assert_eq!(texts(&l, 3), ["line 7", "line 8", "line 9"]);
        l.scroll(-2, 3);
        assert!(!l.follow);
        assert_eq!(texts(&l, 3), ["line 5", "line 6", "line 7"]);
        l.update(chunk(10..20));
        assert_eq!(
            texts(&l, 3),
            ["line 5", "line 6", "line 7"],
            "paused: stays"
        );
        assert_eq!(l.below(), 12);
        l.scroll(100, 3);
        assert!(l.follow, "reaching the end follows again");
        l.top(3);
        assert_eq!(texts(&l, 3), ["line 0", "line 1", "line 2"]);
        l.resume();
        assert_eq!(texts(&l, 3), ["line 17", "line 18", "line 19"]);
    }

    #[test]
    fn memory_is_capped_and_a_paused_view_keeps_its_place() {
        let mut l = Logs::default();
        l.update(chunk(0..MAX_LINES));
        l.scroll(-10, 2);
        let before = texts(&l, 2);
        l.update(chunk(MAX_LINES..MAX_LINES + 5));
        assert_eq!(l.len(), MAX_LINES);
        assert_eq!(texts(&l, 2), before);
        // Its lines dropped from the front: the view stays at the oldest kept.
        l.top(2);
        l.update(chunk(MAX_LINES + 5..MAX_LINES + 100));
        assert_eq!(texts(&l, 2), ["line 100", "line 101"]);
    }

    #[test]
    fn a_log_is_chosen_and_notes_always_show() {
        let mut l = Logs::default();
        l.update(chunk(0..4));
        l.update(Ok(Chunk {
            lines: vec![LogLine::note("rotated")],
            reset: false,
        }));
        l.next_log();
        assert_eq!(l.which, Which::Postgres);
        assert_eq!(texts(&l, 10), ["line 0", "line 2", "rotated"]);
        l.next_log();
        assert_eq!(texts(&l, 10), ["line 1", "line 3", "rotated"]);
        l.update(chunk(4..6));
        assert_eq!(texts(&l, 10), ["line 1", "line 3", "rotated", "line 5"]);
        l.update(Ok(Chunk {
            lines: vec![line(Origin::Patroni, "again")],
            reset: true,
        }));
        assert_eq!(texts(&l, 10), ["again"], "a reset replaces what was shown");
        l.update(Err("gone".into()));
        assert_eq!(texts(&l, 10), ["again"], "an error keeps the lines");
        assert_eq!(l.error.as_deref(), Some("gone"));
    }

    #[test]
    fn search_finds_the_newest_match_and_steps_through_the_others() {
        let mut l = Logs::default();
        l.update(chunk(0..100));
        l.set_search("LINE 1", 5);
        assert_eq!(l.current, Some(19), "the newest line containing it");
        assert!(!l.follow, "the view moves to the match");
        assert!(texts(&l, 5).contains(&"line 19".to_string()));
        l.next_match(false, 5).unwrap();
        assert_eq!(l.current, Some(18));
        l.next_match(true, 5).unwrap();
        l.next_match(true, 5).unwrap();
        assert_eq!(l.current, Some(1), "wraps to the oldest");
        l.next_match(false, 5).unwrap();
        assert_eq!(l.current, Some(19));
        assert_eq!(texts(&l, 5).last().unwrap(), "line 19");
        l.set_search("nowhere", 5);
        assert_eq!(l.current, None);
        assert!(l.next_match(true, 5).unwrap_err().contains("no match"));
        assert_eq!(
            matches("a LOG: Marker marker", "marker"),
            [(7, 13), (14, 20)]
        );
    }
}
