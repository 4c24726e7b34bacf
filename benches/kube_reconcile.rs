//! Reconcile 1,000 clusters against the in-memory API server (tests/common/kube.rs), one after
//! another, as the operator does: the first pass creates every object, the second finds nothing
//! to change. The API server runs in a child process, reached over HTTP, so the operator's peak
//! RSS is its own. Prints the total time of each pass, p50/p99 per reconcile, the writes each pass
//! made, and both processes' peak RSS.
//!
//! `cargo bench --bench kube_reconcile`; PGDECK_BENCH_CLUSTERS and PGDECK_BENCH_NAMESPACES change
//! the counts (default 1,000 clusters in 100 namespaces).

#[path = "../tests/common/kube.rs"]
#[allow(dead_code)]
mod kube_harness;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use kube::api::{Api, ListParams, PostParams};
use kube::client::Body;
use kube::{Client, Config};
use pgdeck::api::{PostgresCluster, manifest};
use pgdeck::platform::kube::metrics::Metrics;
use pgdeck::platform::kube::reconcile::{Context, reconcile};
use tower::Service;

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

/// The child: the in-memory API server on a loopback port, counting writes; `/bench/writes`
/// answers how many so far, `/bench/rss` its peak RSS.
async fn api_server() {
    let store = kube_harness::store(Vec::new()).await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let patroni = Arc::new(Mutex::new(kube_harness::FakePatroni::default()));
    let service = kube_harness::recording(store, calls.clone(), patroni);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on {}", listener.local_addr().unwrap());
    // The benchmark holds our stdin: when it ends, however it ends, so do we.
    tokio::spawn(async {
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
        std::process::exit(0);
    });
    // Only the counts are needed: drop the recorded calls as they come.
    let writes = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let (service, calls, writes) = (service.clone(), calls.clone(), writes.clone());
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |req| {
                handle(service.clone(), calls.clone(), writes.clone(), req)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), handler)
                .await;
        });
    }
}

async fn handle<S>(
    mut service: S,
    calls: Arc<Mutex<Vec<kube_harness::Call>>>,
    writes: Arc<AtomicUsize>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, kube_harness::BoxError>
where
    S: Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = kube_harness::BoxError,
        >,
{
    let answer = |text: String| Ok(http::Response::new(Body::from(text.into_bytes())));
    match req.uri().path() {
        "/bench/writes" => return answer(writes.load(Ordering::Relaxed).to_string()),
        "/bench/rss" => return answer(peak_rss_mib("self").to_string()),
        _ => {}
    }
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await?.to_bytes();
    let response = service
        .call(http::Request::from_parts(parts, Body::from(bytes.to_vec())))
        .await?;
    let mut c = calls.lock().unwrap();
    writes.fetch_add(c.iter().filter(|c| c.is_write()).count(), Ordering::Relaxed);
    c.clear();
    Ok(response)
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

/// Reconcile every cluster once, from one list (the Controller's cache holds them).
async fn pass(client: &Client, ctx: &Arc<Context>) -> Pass {
    let before: usize = ask(client, "writes").await.parse().unwrap();
    let api: Api<PostgresCluster> = Api::all(client.clone());
    let clusters = api.list(&ListParams::default()).await.unwrap().items;
    let start = Instant::now();
    let mut each = Vec::with_capacity(clusters.len());
    for cluster in clusters {
        let name = format!("{}/{}", cluster.namespace(), cluster.name());
        let t = Instant::now();
        reconcile(Arc::new(cluster), ctx.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        each.push(t.elapsed());
    }
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var(SERVER_ROLE).is_ok() {
        runtime.block_on(api_server());
        return;
    }
    let n = count("PGDECK_BENCH_CLUSTERS", 1000);
    let namespaces = count("PGDECK_BENCH_NAMESPACES", 100).max(1);
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
            "{n} clusters like assets/examples/ha.yaml (2 instances, a repository host, 2 backup schedules: 33 objects each) in {namespaces} namespaces, reconciled one after another"
        );
        let ctx = Arc::new(Context::new(client.clone(), Arc::new(Metrics::new())));
        let first = pass(&client, &ctx).await;
        report("first pass (creates everything)", &first);
        let second = pass(&client, &ctx).await;
        report("second pass (nothing changed)", &second);
        println!(
            "peak RSS: operator {:.0} MiB; in-memory API server (its own process) {:.0} MiB",
            peak_rss_mib("self"),
            ask(&client, "rss").await.parse::<f64>().unwrap()
        );
    });
    let _ = server.kill();
    let _ = server.wait();
}
