use clap::Parser;

fn main() {
    // kube's TLS uses ring; say so once for the process. Builds that also link aws-lc-rs (the
    // test build, through a dev-dependency) would otherwise have no default and panic in any
    // reqwest client, even a plain-HTTP one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = pgdeck::cli::Cli::parse();
    if let Err(failure) = pgdeck::cli::run(cli) {
        // An empty message: the command's child (psql) has said why.
        if !failure.message.is_empty() {
            eprintln!("error: {}", failure.message);
        }
        std::process::exit(failure.code);
    }
}
