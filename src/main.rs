use clap::Parser;

fn main() {
    let cli = pgdeck::cli::Cli::parse();
    if let Err(failure) = pgdeck::cli::run(cli) {
        eprintln!("error: {}", failure.message);
        std::process::exit(failure.code);
    }
}
