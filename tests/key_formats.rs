//! Keys signers already have: `openssl genpkey -algorithm ed25519` (PKCS#8 PEM) and
//! `ssh-keygen -t ed25519` (OpenSSH) keys sign entries through the real binary; refused key
//! files say what is wrong.
//!
//! The keys come from `tests/fixtures/keys/` (made once by `make.sh` beside them), so the suite
//! needs neither tool. When `openssl` or `ssh-keygen` is installed, a fresh key made by it now
//! is used as well, and the test says on stderr which were used and which skipped.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;

fn evl(ledger: &Path) -> Command {
    let mut c = Command::cargo_bin("evl").unwrap();
    c.env("XDG_STATE_HOME", ledger.with_file_name("state"))
        .env_remove("EVL_KEY")
        .arg("--ledger")
        .arg(ledger);
    c
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

/// Copies a committed key file into `dir` as a secret key file must be: mode 0600 (git keeps
/// no modes but the executable bit).
fn secret_copy(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(fixture(name), &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    to
}

/// Whether `tool` runs here (it exists and starts).
fn tool(name: &str, arg: &str) -> bool {
    Std::new(name).arg(arg).output().is_ok()
}

/// Says what this run used, past the test harness's output capture, so a run without the
/// tools is visibly a run without them.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "key_formats: {line}");
}

/// A fresh openssl key pair in `d`: (public, secret).
fn fresh_openssl(d: &Path) -> (PathBuf, PathBuf) {
    let secret = d.join("fresh-openssl.pem");
    let public = d.join("fresh-openssl.pub.pem");
    let ok = |c: &mut Std| assert!(c.status().unwrap().success(), "{c:?}");
    ok(Std::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&secret));
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(Std::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&secret)
        .arg("-out")
        .arg(&public));
    (public, secret)
}

/// A fresh ssh-keygen key pair in `d`: (public, secret).
fn fresh_ssh(d: &Path) -> (PathBuf, PathBuf) {
    let secret = d.join("fresh_id_ed25519");
    let st = Std::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f"])
        .arg(&secret)
        .status()
        .unwrap();
    assert!(st.success());
    (d.join("fresh_id_ed25519.pub"), secret)
}

#[test]
fn openssl_and_ssh_keygen_keys_register_and_sign() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ledger = d.join("ledger");
    Command::cargo_bin("evl")
        .unwrap()
        .args(["keygen", "admin", "--dir"])
        .arg(d)
        .assert()
        .success();
    evl(&ledger)
        .args(["init", "--origin", "example.org/t", "--admin"])
        .arg(d.join("admin.pub"))
        .arg("--key")
        .arg(d.join("admin.key"))
        .assert()
        .success();

    // (registry name, public key file, secret key file)
    let mut signers = vec![
        (
            "ossl",
            fixture("openssl.pub.pem"),
            secret_copy("openssl.pem", d),
        ),
        (
            "sshkey",
            fixture("id_ed25519.pub"),
            secret_copy("id_ed25519", d),
        ),
    ];
    if tool("openssl", "version") {
        let (public, secret) = fresh_openssl(d);
        signers.push(("ossl-fresh", public, secret));
        say("openssl found: a key it made now signs too");
    } else {
        say("openssl not found: skipped a fresh openssl key (the committed one was used)");
    }
    if tool("ssh-keygen", "-?") {
        let (public, secret) = fresh_ssh(d);
        signers.push(("sshkey-fresh", public, secret));
        say("ssh-keygen found: a key it made now signs too");
    } else {
        say("ssh-keygen not found: skipped a fresh ssh-keygen key (the committed one was used)");
    }

    let genesis = evl(&ledger)
        .args(["log", "--kind", "genesis", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&genesis.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let v = serde_json::Value::Array(vec![v]);
    let gid = v[0]["id"].as_str().unwrap().to_string();
    for (name, public, secret) in &signers {
        evl(&ledger)
            .args(["key", "add", name, "--role", "reviewer", "--pub"])
            .arg(public)
            .arg("--key")
            .arg(d.join("admin.key"))
            .assert()
            .success();
        evl(&ledger)
            .args([
                "annotate",
                &gid,
                "--kind",
                "note",
                "--text",
                &format!("signed by {name}"),
                "--key",
            ])
            .arg(secret)
            .assert()
            .success();
    }
    let log = evl(&ledger)
        .args(["log", "--kind", "annotation", "--json"])
        .output()
        .unwrap();
    let v = serde_json::Value::Array(
        String::from_utf8_lossy(&log.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    );
    let signed: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["signer_name"].as_str().unwrap().to_string())
        .collect();
    let names: Vec<_> = signers.iter().map(|(n, _, _)| n.to_string()).collect();
    assert_eq!(signed, names);
    // Genesis, then a key-add and an annotation per signer.
    evl(&ledger)
        .arg("verify")
        .assert()
        .success()
        .stdout(predicates::str::contains(format!(
            "verified: {} entries",
            1 + 2 * signers.len()
        )));
}

#[test]
fn refused_key_files_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    Command::cargo_bin("evl")
        .unwrap()
        .args(["keygen", "admin", "--dir"])
        .arg(d)
        .assert()
        .success();
    let mode = std::fs::metadata(d.join("admin.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(
        mode, 0o600,
        "keygen must create the secret key with mode 0600"
    );
    let shown = std::fs::read_to_string(d.join("admin.key")).unwrap();
    assert!(shown.contains("BEGIN PRIVATE KEY"));

    // Group-readable: refused with the fix in the message, exit 3.
    std::fs::set_permissions(d.join("admin.key"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = evl(&d.join("ledger"))
        .args(["init", "--origin", "example.org/t", "--admin"])
        .arg(d.join("admin.pub"))
        .arg("--key")
        .arg(d.join("admin.key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("chmod 600") && err.lines().count() == 1,
        "{err}"
    );
    assert!(
        !d.join("ledger").exists(),
        "a refused init must create no ledger directory"
    );

    // Malformed: exit 2, names the file.
    std::fs::write(d.join("bad.key"), "not a key\n").unwrap();
    std::fs::set_permissions(d.join("bad.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = evl(&d.join("ledger"))
        .args(["init", "--origin", "example.org/t", "--admin"])
        .arg(d.join("admin.pub"))
        .arg("--key")
        .arg(d.join("bad.key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.key") && err.contains("not an Ed25519 secret key"),
        "{err}"
    );

    // Keys evl cannot sign with, each refused with its reason: exit 2, no ledger.
    for (file, reason) in [
        ("openssl-encrypted.pem", "the PKCS#8 key is encrypted"),
        ("id_ed25519_passphrase", "passphrase-protected"),
        ("id_ecdsa", "OpenSSH key"),
    ] {
        let secret = secret_copy(file, d);
        let out = evl(&d.join("ledger"))
            .args(["init", "--origin", "example.org/t", "--admin"])
            .arg(d.join("admin.pub"))
            .arg("--key")
            .arg(&secret)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.lines().count() == 1
                && err.contains(file)
                && err.contains("not an Ed25519 secret key")
                && err.contains(reason),
            "{file}: {err}"
        );
        assert!(!d.join("ledger").exists(), "{file}: a ledger was created");
    }

    // keygen never overwrites.
    let out = Command::cargo_bin("evl")
        .unwrap()
        .args(["keygen", "admin", "--dir"])
        .arg(d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));
}
