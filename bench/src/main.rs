//! `corekey-bench`: `run` (a memtier_benchmark-style load generator) and `compare` (corekey
//! against reference servers). See bench/README.md.

use clap::{Parser, Subcommand};
use corekey_bench::{compare, run};

#[derive(Parser)]
#[command(
    name = "corekey-bench",
    version,
    about = "corekey's load generator and side-by-side comparison"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate load against one server or cluster (memtier_benchmark's options).
    Run(Box<run::RunArgs>),
    /// Start corekey and reference servers, pin them, and compare them in alternating rounds.
    Compare(Box<compare::CompareArgs>),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(a) => run::execute(a),
        Command::Compare(a) => compare::execute(a),
    };
    if let Err(e) = result {
        eprintln!("corekey-bench: {e}");
        std::process::exit(1);
    }
}
