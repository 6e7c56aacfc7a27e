//! The `evl` command: parses arguments and dispatches to `evl::cli`.

use clap::Parser;

fn main() {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`evl log | head`) instead of failing on a broken pipe.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = evl::cli::Cli::parse();
    std::process::exit(evl::cli::run(cli));
}
