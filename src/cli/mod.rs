//! The command line: the console by default, the operator, and one-shot twins of the console's
//! actions for scripts, tests and benchmarks.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::actions::verbs::Verb;
use crate::api::support::Platform;
use crate::console;
use crate::platform::local::Local;
use crate::platform::local::home::Home;

mod files;
mod kube;
mod local;
mod offline;
mod views;

pub use files::{read_clusters, read_documents, read_manifest_source};

#[derive(Parser, Debug)]
#[command(
    name = "pgdeck",
    version,
    about = "A terminal console for PostgreSQL high-availability clusters, and the operator that runs them",
    long_about = "Without a command, pgdeck opens the console. Every change, from the console or a \
                  command, is a change to the cluster's PostgresCluster manifest; the operator \
                  (`pgdeck operator`) carries it out."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// The console's theme: dark, light, high-contrast, monochrome, or one of your own.
    #[arg(long)]
    pub theme: Option<String>,
    /// Open the console without any key that changes a cluster.
    #[arg(long)]
    pub readonly: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Where clusters run: `kube` (default when a kubeconfig context exists) or `local`.
    #[arg(long, global = true, env = "PGDECK_PLATFORM", value_enum)]
    pub platform: Option<PlatformKind>,

    /// The kubeconfig context to use (kube platform).
    #[arg(long, global = true)]
    pub context: Option<String>,

    /// The namespace (default: `default`, or the context's namespace on kube).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,

    /// Every namespace.
    #[arg(short = 'A', long, global = true, conflicts_with = "namespace")]
    pub all_namespaces: bool,

    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformKind {
    Kube,
    Local,
}

impl From<PlatformKind> for Platform {
    fn from(kind: PlatformKind) -> Platform {
        match kind {
            PlatformKind::Kube => Platform::Kube,
            PlatformKind::Local => Platform::Local,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackupType {
    Full,
    Diff,
    Incr,
}

impl BackupType {
    /// As pgBackRest names it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupType::Full => "full",
            BackupType::Diff => "diff",
            BackupType::Incr => "incr",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct Wait {
    /// Return when the status shows the change done, or fail with the reason.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, e.g. 90s, 5m.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum OperatorAction {
    /// Local platform: stop the home's background reconciler; the databases keep running.
    Stop,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the headless reconciler (`operator stop`: stop the local home's background one).
    Operator {
        #[command(subcommand)]
        action: Option<OperatorAction>,
        /// Kube: watch only this namespace (default: every namespace).
        #[arg(long = "watch-namespace")]
        watch_namespace: Option<String>,
        /// Where /metrics, /healthz and /readyz are served. Kube: default 0.0.0.0:8080. Local:
        /// default 127.0.0.1 on a free port, recorded in the home (`pgdeck status` shows it).
        #[arg(long)]
        metrics_address: Option<String>,
    },
    /// Create or update clusters, and the ConfigMaps and Secrets beside them, from a manifest
    /// file (`-` for standard input).
    Apply {
        #[arg(short = 'f', long = "filename", required = true)]
        file: PathBuf,
        #[command(flatten)]
        wait: Wait,
    },
    /// List clusters, or show one; `get configmaps|secrets [NAME]` lists those.
    Get {
        /// A cluster's name, or a kind (`configmaps`/`cm`, `secrets`, `postgresclusters`/`pgc`)
        /// and perhaps a name.
        #[arg(value_name = "[KIND] NAME", num_args = 0..=2)]
        args: Vec<String>,
    },
    /// Show a cluster's instances, roles, lag and backups.
    Status { name: String },
    /// Print a libpq connection URI for a cluster.
    Uri {
        name: String,
        /// The user (default: the cluster's first user).
        #[arg(long)]
        user: Option<String>,
        /// Connect to a replica instead of the primary.
        #[arg(long, conflicts_with = "pgbouncer")]
        replica: bool,
        /// Connect through the cluster's pgBouncer (`spec.proxy.pgBouncer`).
        #[arg(long)]
        pgbouncer: bool,
    },
    /// Open psql on an instance (default: the primary) as one of the cluster's users; arguments
    /// after `--` go to psql, e.g. `pgdeck psql hippo -- -c 'select 1'`.
    Psql {
        name: String,
        /// The instance (default: the primary).
        #[arg(long)]
        instance: Option<String>,
        /// The user (default: the cluster's first user; `postgres` is the superuser).
        #[arg(long)]
        user: Option<String>,
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Switch the primary over to another instance.
    Switchover {
        name: String,
        /// The instance to promote (default: the healthiest candidate).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        wait: Wait,
    },
    /// Change the number of instances in an instance set.
    Scale {
        name: String,
        #[arg(long)]
        replicas: i32,
        /// The instance set (needed when the cluster has more than one).
        #[arg(long)]
        set: Option<String>,
        /// Keep the data of instances removed by a scale-down.
        #[arg(long)]
        keep_data: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Take a backup with pgBackRest.
    Backup {
        name: String,
        #[arg(long = "type", value_enum, default_value_t = BackupType::Full)]
        type_: BackupType,
        /// The repository (default: the first).
        #[arg(long)]
        repo: Option<String>,
        #[command(flatten)]
        wait: Wait,
    },
    /// Restart one instance in place, every instance rolling (`--all`: replicas first, then a
    /// switchover, then the old primary), or only those pending restart (`--pending`).
    #[command(group(clap::ArgGroup::new("what").required(true).args(["instance", "all", "pending"])))]
    Restart {
        name: String,
        /// The instance to restart.
        instance: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        pending: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Reload every instance's configuration.
    Reload {
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Pause Patroni (maintenance mode): no automatic failover until `resume`.
    Pause {
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Resume Patroni after `pause`.
    Resume {
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Stop every instance of the cluster (`spec.shutdown`); the data stays.
    Stop {
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Start a stopped cluster again.
    Start {
        name: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Rebuild a broken replica from the primary (never the primary).
    Reinit {
        name: String,
        instance: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Delete a cluster: its instances, data and backups unless kept; or `delete configmap|secret
    /// NAME`.
    Delete {
        /// A cluster's name, or a kind (`configmap`, `secret`, `postgrescluster`) and a name.
        #[arg(value_name = "[KIND] NAME", required = true, num_args = 1..=2)]
        args: Vec<String>,
        /// Keep the instances' data directories.
        #[arg(long)]
        keep_data: bool,
        /// Keep the backup repositories, to restore from later.
        #[arg(long)]
        keep_backups: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Check manifest files without applying them, for the platform `apply` would use.
    Validate {
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
    /// Print every Kubernetes object the operator would write for a manifest.
    Render {
        #[arg(short = 'f', long = "filename", required = true)]
        file: PathBuf,
    },
    /// Print the PostgresCluster CustomResourceDefinition.
    Crd,
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}

/// The verb a command asks for (restart, reload, pause, resume, stop, start, reinit), with the
/// cluster's name and how to wait; `Err` gives the command back.
pub fn verb_of(command: Command) -> Result<(String, Verb, Wait), Command> {
    use crate::plan::verbs::RestartScope;
    Ok(match command {
        Command::Restart {
            name,
            instance,
            all,
            pending: _,
            wait,
        } => {
            let scope = match (instance, all) {
                (Some(i), _) => RestartScope::Instance(i),
                (None, true) => RestartScope::All,
                (None, false) => RestartScope::Pending,
            };
            (name, Verb::Restart(scope), wait)
        }
        Command::Reload { name, wait } => (name, Verb::Reload, wait),
        Command::Pause { name, wait } => (name, Verb::Pause, wait),
        Command::Resume { name, wait } => (name, Verb::Resume, wait),
        Command::Stop { name, wait } => (name, Verb::Stop, wait),
        Command::Start { name, wait } => (name, Verb::Start, wait),
        Command::Reinit {
            name,
            instance,
            wait,
        } => (name, Verb::Reinit(instance), wait),
        other => return Err(other),
    })
}

/// What `get` and `delete` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cluster,
    ConfigMap,
    Secret,
}

/// `[KIND] [NAME]` as kubectl reads them: `hippo`, `configmaps`, `configmap sql`, `pgc hippo`.
/// One word that is not a kind is a cluster's name.
pub fn kind_and_name(args: &[String]) -> Result<(Kind, Option<String>), Failure> {
    let kind = |word: &str| match word {
        "postgrescluster" | "postgresclusters" | "pgc" => Some(Kind::Cluster),
        "configmap" | "configmaps" | "cm" => Some(Kind::ConfigMap),
        "secret" | "secrets" => Some(Kind::Secret),
        _ => None,
    };
    match args {
        [] => Ok((Kind::Cluster, None)),
        [one] => Ok(match kind(one) {
            Some(k) => (k, None),
            None => (Kind::Cluster, Some(one.clone())),
        }),
        [k, name, ..] => match kind(k) {
            Some(k) => Ok((k, Some(name.clone()))),
            None => Err(Failure {
                code: 1,
                message: format!(
                    "{k:?} is not a kind: use postgresclusters (pgc), configmaps (cm) or secrets"
                ),
            }),
        },
    }
}

/// What `delete` names: a kind and a name. Keeping data or backups, and waiting, are for
/// clusters: given for a ConfigMap or Secret they are refused, not ignored.
pub fn delete_target(
    args: &[String],
    keep_data: bool,
    keep_backups: bool,
    wait: &Wait,
) -> Result<(Kind, String), Failure> {
    let fail = |message: &str| Failure {
        code: 1,
        message: message.into(),
    };
    match kind_and_name(args)? {
        (_, None) => Err(fail("delete needs a name, e.g. `delete configmap NAME`")),
        (Kind::Cluster, Some(name)) => Ok((Kind::Cluster, name)),
        (_, Some(_)) if keep_data || keep_backups || wait.wait => Err(fail(
            "--keep-data, --keep-backups and --wait are for deleting a cluster",
        )),
        (kind, Some(name)) => Ok((kind, name)),
    }
}

/// `90s`, `5m`, `1h`, or plain seconds.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 5m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?} is not a duration like 90s, 5m or 1h")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// Write to standard output; a reader that went away (`| head`) is not an error.
/// `pgdeck psql`'s outcome: psql's own exit code (it said why), or the signal that ended it.
fn psql_exit(status: std::process::ExitStatus) -> Result<(), Failure> {
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Failure {
            code,
            message: String::new(),
        }),
        None => Err(Failure {
            code: 1,
            message: format!("psql ended by {status}"),
        }),
    }
}

pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// What a command reports when it fails: its message, and the process exit code.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    crate::platform::install_crypto();
    match cli.command {
        Some(Command::Validate { files }) => {
            offline::validate(&files, platform(&cli.global)?.into())
        }
        Some(Command::Crd) => offline::crd(),
        Some(Command::Completions { shell }) => offline::completions(shell),
        Some(Command::Render { file }) => kube::render(&file, &cli.global),
        Some(command) => {
            let platform = platform(&cli.global)?;
            let operator = matches!(command, Command::Operator { action: None, .. });
            init_logging(operator, operator && platform == PlatformKind::Kube);
            match platform {
                PlatformKind::Local => {
                    local::run(Local::new(Home::from_env()), &cli.global, command)
                }
                PlatformKind::Kube => kube::run(&cli.global, command),
            }
        }
        None => {
            let options = console::Options {
                theme: cli.theme,
                read_only: cli.readonly,
                namespace: cli.global.namespace.clone(),
                all_namespaces: cli.global.all_namespaces,
            };
            let platform = match platform(&cli.global)? {
                PlatformKind::Local => console::Platform::Local(Local::new(Home::from_env())),
                PlatformKind::Kube => console::Platform::Kube {
                    context: cli.global.context.clone(),
                },
            };
            console::run(platform, options).map_err(|message| Failure { code: 1, message })
        }
    }
}

/// `--platform`, else kube when a kubeconfig context exists, else local.
fn platform(global: &Global) -> Result<PlatformKind, Failure> {
    if let Some(p) = global.platform {
        return Ok(p);
    }
    let has_context = global.context.is_some()
        || ::kube::config::Kubeconfig::read()
            .is_ok_and(|k| k.current_context.is_some_and(|c| !c.is_empty()));
    Ok(if has_context {
        PlatformKind::Kube
    } else {
        PlatformKind::Local
    })
}

/// The operator logs at info (to operator.log when started in the background; as JSON lines on
/// Kubernetes); other commands stay quiet unless RUST_LOG asks.
fn init_logging(operator: bool, json: bool) {
    let default = if operator { "info" } else { "warn" };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    if json {
        let logs = crate::platform::kube::operator::json_logs(filter, std::io::stderr);
        let _ = tracing::subscriber::set_global_default(logs);
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_delete_read_a_kind_and_a_name_as_kubectl_does() {
        let read = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            kind_and_name(&args).map_err(|f| f.message)
        };
        assert_eq!(read(&[]).unwrap(), (Kind::Cluster, None));
        assert_eq!(
            read(&["hippo"]).unwrap(),
            (Kind::Cluster, Some("hippo".into()))
        );
        assert_eq!(read(&["cm"]).unwrap(), (Kind::ConfigMap, None));
        assert_eq!(
            read(&["secret", "tls"]).unwrap(),
            (Kind::Secret, Some("tls".into()))
        );
        assert_eq!(
            read(&["pgc", "configmaps"]).unwrap(),
            (Kind::Cluster, Some("configmaps".into())),
            "a cluster named like a kind"
        );
        assert!(read(&["hippo", "x"]).unwrap_err().contains("not a kind"));
    }

    #[test]
    fn keep_flags_are_refused_for_config_maps_not_ignored() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let wait = Wait {
            wait: false,
            timeout: std::time::Duration::from_secs(1),
        };
        let target = |a: &[&str], keep: bool| {
            delete_target(&args(a), keep, false, &wait).map_err(|f| f.message)
        };
        assert_eq!(
            target(&["configmap", "sql"], false).unwrap(),
            (Kind::ConfigMap, "sql".into())
        );
        assert!(target(&["configmap", "sql"], true).is_err());
        assert_eq!(
            target(&["hippo"], true).unwrap(),
            (Kind::Cluster, "hippo".into())
        );
        assert!(
            target(&["secrets"], false)
                .unwrap_err()
                .contains("needs a name")
        );
    }
}
