//! Keys signers already have: `openssl genpkey -algorithm ed25519` (PKCS#8 PEM) and
//! `ssh-keygen -t ed25519` (OpenSSH) keys sign entries through the real binary; refused key
//! files say what is wrong.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command as Std;

use assert_cmd::Command;

fn evl(ledger: &Path) -> Command {
    let mut c = Command::cargo_bin("evl").unwrap();
    c.env("XDG_STATE_HOME", ledger.with_file_name("state"))
        .arg("--ledger")
        .arg(ledger);
    c
}

fn tool(name: &str) -> bool {
    Std::new(name).arg("-h").output().is_ok()
}

#[test]
fn openssl_and_ssh_keygen_keys_register_and_sign() {
    assert!(
        tool("openssl") && tool("ssh-keygen"),
        "this test needs openssl and ssh-keygen"
    );
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

    // openssl: PKCS#8 secret; its SPKI public key in PEM.
    let ossl = d.join("ossl.pem");
    assert!(
        Std::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&ossl)
            .status()
            .unwrap()
            .success()
    );
    std::fs::set_permissions(&ossl, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ossl_pub = d.join("ossl.pub.pem");
    assert!(
        Std::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&ossl)
            .arg("-out")
            .arg(&ossl_pub)
            .status()
            .unwrap()
            .success()
    );

    // ssh-keygen: OpenSSH secret, `ssh-ed25519 …` public line.
    let ssh = d.join("id_ed25519");
    assert!(
        Std::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f"])
            .arg(&ssh)
            .status()
            .unwrap()
            .success()
    );

    for (name, public, secret) in [
        ("ossl", ossl_pub.clone(), ossl.clone()),
        ("sshkey", d.join("id_ed25519.pub"), ssh.clone()),
    ] {
        evl(&ledger)
            .args(["key", "add", name, "--role", "reviewer", "--pub"])
            .arg(&public)
            .arg("--key")
            .arg(d.join("admin.key"))
            .assert()
            .success();
        let genesis = evl(&ledger)
            .args(["log", "--kind", "genesis", "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&genesis.stdout).unwrap();
        let gid = v[0]["id"].as_str().unwrap().to_string();
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
            .arg(&secret)
            .assert()
            .success();
    }
    let log = evl(&ledger)
        .args(["log", "--kind", "annotation", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    let signers: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["signer_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(signers, ["ossl", "sshkey"]);
    evl(&ledger)
        .arg("verify")
        .assert()
        .success()
        .stdout(predicates::str::contains("verified: 5 entries"));
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
        !d.join("ledger").join("conf").exists(),
        "a refused init must create no ledger"
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
