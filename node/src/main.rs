//! The `corekey` binary: parse the configuration, set up logging, run the node.

use corekey_node::config::{self, Invocation};

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    // A panic is a bug: abort the whole process rather than leave a half-alive node with a
    // dead shard (the release profile aborts too; this makes every build do so).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));
    let args: Vec<String> = std::env::args().collect();
    let config = match config::load(&args) {
        Ok(Invocation::Run(c)) => c,
        Ok(Invocation::Print(text)) => {
            print!("{text}");
            return;
        }
        Ok(Invocation::CheckSystem(c)) => std::process::exit(corekey_node::check::run(&c)),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = corekey_node::server::init_logging(&config) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    std::process::exit(corekey_node::server::run(*config));
}
