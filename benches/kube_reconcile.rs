//! Reconcile 1,000 clusters against the in-memory API server (tests/common/kube.rs), a few at a
//! time as the operator's Controller does: the first pass creates every object, the second finds
//! nothing to change. The API server runs in a child process, reached over HTTP, so the operator's peak
//! RSS is its own. Prints the total time of each pass, p50/p99 per reconcile, the writes each pass
//! made, and both processes' peak RSS.
//!
//! `cargo bench --bench kube_reconcile`; PGDECK_BENCH_CLUSTERS, PGDECK_BENCH_NAMESPACES and
//! PGDECK_BENCH_CONCURRENCY change the counts (default 1,000 clusters in 100 namespaces, 4 at a
//! time).

#[path = "../tests/common/kube.rs"]
#[allow(dead_code)]
mod kube_harness;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use http_body_util::BodyExt;
use kube::api::{Api, ListParams, PostParams};
use kube::client::Body;
use kube::{Client, Config};
use pgdeck::api::{PostgresCluster, manifest};
use pgdeck::platform::kube::metrics::Metrics;
use pgdeck::platform::kube::reconcile::{Context, reconcile};

const SERVER_ROLE: &str = "PGDECK_BENCH_API_SERVER";

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The largest resident set of process `pid` (`self` for this one), in MiB.
fn peak_rss_mib(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds (user and system) process `pid` used so far.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Linux reports in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

/// The child: the in-memory API server on a loopback port, counting writes; `/bench/writes`
/// answers how many so far, `/bench/rss` its peak RSS.
async fn api_server() {
    let store = kube_harness::store(Vec::new()).await;
    let patroni = Arc::new(Mutex::new(kube_harness::FakePatroni::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on {}", listener.local_addr().unwrap());
    // The benchmark holds our stdin: when it ends, however it ends, so do we.
    tokio::spawn(async {
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
        std::process::exit(0);
    });
    let writes = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let (store, patroni, writes) = (store.clone(), patroni.clone(), writes.clone());
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |req| {
                handle(store.clone(), patroni.clone(), writes.clone(), req)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), handler)
                .await;
        });
    }
}

async fn handle(
    store: Client,
    patroni: Arc<Mutex<kube_harness::FakePatroni>>,
    writes: Arc<AtomicUsize>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<kube_harness::Reply>, kube_harness::BoxError> {
    let answer = |text: String| Ok(http::Response::new(kube_harness::reply(text)));
    match req.uri().path() {
        "/bench/writes" => return answer(writes.load(Ordering::Relaxed).to_string()),
        "/bench/rss" => return answer(peak_rss_mib("self").to_string()),
        "/bench/cpu" => return answer(cpu_seconds("self").to_string()),
        _ => {}
    }
    if req.method() != http::Method::GET {
        writes.fetch_add(1, Ordering::Relaxed);
    }
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await?.to_bytes();
    let req = http::Request::from_parts(parts, Body::from(bytes.to_vec()));
    kube_harness::answer(store, patroni, req).await
}

async fn ask(client: &Client, what: &str) -> String {
    client
        .request_text(
            http::Request::get(format!("/bench/{what}"))
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap()
}

struct Pass {
    total: Duration,
    each: Vec<Duration>,
    writes: usize,
}

/// Reconcile every cluster once, from one list (the Controller's cache holds them), at most
/// `concurrency` at a time (the Controller runs reconciles of different clusters concurrently).
async fn pass(client: &Client, ctx: &Arc<Context>, concurrency: usize) -> Pass {
    let before: usize = ask(client, "writes").await.parse().unwrap();
    let api: Api<PostgresCluster> = Api::all(client.clone());
    let clusters = api.list(&ListParams::default()).await.unwrap().items;
    let start = Instant::now();
    let mut each: Vec<Duration> = futures::stream::iter(clusters)
        .map(|cluster| {
            let ctx = ctx.clone();
            async move {
                let name = format!("{}/{}", cluster.namespace(), cluster.name());
                let t = Instant::now();
                reconcile(Arc::new(cluster), ctx)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                t.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let total = start.elapsed();
    let after: usize = ask(client, "writes").await.parse().unwrap();
    each.sort();
    Pass {
        total,
        each,
        writes: after - before,
    }
}

fn report(what: &str, p: &Pass) {
    let at = |q: f64| {
        let d = p.each[((p.each.len() as f64 - 1.0) * q).round() as usize];
        format!("{:.2} ms", d.as_secs_f64() * 1000.0)
    };
    println!(
        "{what}: total {:.2} s, p50 {}, p99 {}, writes {}",
        p.total.as_secs_f64(),
        at(0.5),
        at(0.99),
        p.writes
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var(SERVER_ROLE).is_ok() {
        runtime.block_on(api_server());
        return;
    }
    let n = count("PGDECK_BENCH_CLUSTERS", 1000);
    let namespaces = count("PGDECK_BENCH_NAMESPACES", 100).max(1);
    let concurrency = count("PGDECK_BENCH_CONCURRENCY", 4).max(1);
    let mut server = Command::new(std::env::current_exe().unwrap())
        .env(SERVER_ROLE, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    runtime.block_on(async {
        pgdeck::platform::install_crypto();
        let config = Config::new(format!("http://{address}").parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/examples/ha.yaml"
        ))
        .unwrap();
        for i in 0..n {
            let mut c = manifest::parse(&template).unwrap();
            let ns = format!("ns{}", i % namespaces);
            c.metadata.name = Some(format!("hippo{i}"));
            c.metadata.namespace = Some(ns.clone());
            // A `status` makes the fake treat it as the status subresource, as the CRD declares.
            let mut value = serde_json::to_value(&c).unwrap();
            value["status"] = serde_json::json!({});
            let api: Api<PostgresCluster> = Api::namespaced(client.clone(), &ns);
            api.create(&PostParams::default(), &serde_json::from_value(value).unwrap())
                .await
                .unwrap();
        }
        println!(
            "{n} clusters like assets/examples/ha.yaml (2 instances, a repository host, 2 backup schedules: 33 objects each) in {namespaces} namespaces, {concurrency} reconciles at a time"
        );
        let ctx = Arc::new(Context::new(client.clone(), Arc::new(Metrics::new())));
        let first = pass(&client, &ctx, concurrency).await;
        report("first pass (creates everything)", &first);
        let second = pass(&client, &ctx, concurrency).await;
        report("second pass (nothing changed)", &second);
        println!(
            "peak RSS: operator {:.0} MiB; in-memory API server (its own process) {:.0} MiB",
            peak_rss_mib("self"),
            ask(&client, "rss").await.parse::<f64>().unwrap()
        );
        println!(
            "CPU used in all: operator {:.1} s, in-memory API server {:.1} s",
            cpu_seconds("self"),
            ask(&client, "cpu").await.parse::<f64>().unwrap()
        );
    });
    let _ = server.kill();
    let _ = server.wait();
}
