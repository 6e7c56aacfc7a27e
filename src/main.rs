//! The `evl` command: parses arguments and dispatches to `evl::cli`.

/// See Cargo.toml: musl's allocator maps and unmaps pages for small allocations.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`evl log | head`) instead of failing on a broken pipe.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        // A file-size limit (`ulimit -f`) hit mid-write is a storage failure like a full disk:
        // the write returns EFBIG, the append rolls back and exits 5, instead of the process
        // dying on SIGXFSZ with an unfinished batch in the log.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let cli = evl::cli::parse();
    std::process::exit(evl::cli::run(cli));
}
