//! The `evl` command: parses arguments and dispatches to `evl::cli`.

use clap::Parser;

fn main() {
    let cli = evl::cli::Cli::parse();
    std::process::exit(evl::cli::run(cli));
}
