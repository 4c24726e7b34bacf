//! What clients see of a switchover through pgBouncer: the longest wait between two
//! acknowledged writes and the writes that failed, for a writer through pgBouncer and one
//! through the direct multi-host URI in the same run; with pgBouncer pausing its pools
//! (`pool_mode: transaction`) and without (`session`, which cannot pause). Every acknowledged
//! write is checked to be there afterwards.
//!
//! Run: `cargo bench --bench pgbouncer_switchover` (`ROUNDS=n`, default 3 per mode).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::local::LocalHome;
use common::writer;

fn manifest(pool_mode: &str) -> String {
    common::local::manifest(
        "bounce",
        2,
        "",
        &format!(
            "  proxy:\n    pgBouncer:\n      config:\n        global: {{pool_mode: {pool_mode}}}\n"
        ),
        "",
    )
}

fn ready(s: &serde_json::Value) -> bool {
    let p = &s["proxy"]["pgBouncer"];
    p["readyReplicas"] == 1 && p["paused"].is_null() && common::local::all_ready(s, 2)
}

#[derive(Default)]
struct Figures {
    longest: Vec<Duration>,
    failed: Vec<usize>,
}

impl Figures {
    fn add(&mut self, o: &writer::Outcome) {
        self.longest.push(o.longest_gap);
        self.failed.push(o.failed);
    }

    fn line(&self, what: &str) -> String {
        let ms: Vec<String> = self
            .longest
            .iter()
            .map(|d| format!("{}", d.as_millis()))
            .collect();
        format!(
            "{what:<34} longest wait ms {:<20} max {:>6}   failed queries {:?}",
            ms.join(","),
            self.longest
                .iter()
                .max()
                .unwrap_or(&Duration::ZERO)
                .as_millis(),
            self.failed
        )
    }
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let home = LocalHome::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut first = 0_i64;
    let mut report = Vec::new();
    for mode in ["transaction", "session"] {
        home.apply_ready(&manifest(mode), "180s");
        home.wait_for("bounce", Duration::from_secs(120), "pgBouncer ready", ready);
        let direct = home.ok(&["uri", "bounce"]).trim().to_string();
        let pooled = home
            .ok(&["uri", "bounce", "--pgbouncer"])
            .trim()
            .to_string();
        home.psql(&direct, writer::TABLE);
        let (mut through_direct, mut through_pooler) = (Figures::default(), Figures::default());
        for round in 0..rounds {
            let (stop, rx) = tokio::sync::watch::channel(false);
            let patience = Duration::from_secs(10);
            let d = runtime.spawn(writer::write(direct.clone(), first, patience, rx.clone()));
            let p = runtime.spawn(writer::write(
                pooled.clone(),
                first + 500_000_000,
                patience,
                rx,
            ));
            first += 1_000_000;
            std::thread::sleep(Duration::from_secs(2));
            let before = home.status("bounce")["primary"].clone();
            home.ok(&["switchover", "bounce", "--wait", "--timeout", "120s"]);
            home.wait_for("bounce", Duration::from_secs(60), "pools resumed", |s| {
                ready(s) && s["primary"] != before
            });
            std::thread::sleep(Duration::from_secs(2));
            stop.send(true).unwrap();
            let (d, p) = (runtime.block_on(d).unwrap(), runtime.block_on(p).unwrap());
            let present: HashSet<i64> = writer::present(&direct);
            for (what, o) in [("direct", &d), ("pgBouncer", &p)] {
                let lost = o.lost(&present);
                assert!(
                    lost.is_empty(),
                    "{mode} round {round}: {what} lost {lost:?}"
                );
                assert!(
                    !o.acked.is_empty(),
                    "{mode} round {round}: {what} wrote nothing"
                );
            }
            through_direct.add(&d);
            through_pooler.add(&p);
            eprintln!("{mode} round {round}: done");
        }
        report.push(through_pooler.line(&format!("pgBouncer, {mode} pooling")));
        report.push(through_direct.line(&format!("direct URI (same run, {mode})")));
    }
    println!("\nswitchovers per mode: {rounds}; every acknowledged write present afterwards");
    for line in report {
        println!("{line}");
    }
}
