//! Keys signers already hold: a real `ssh-agent` signs evl entries and checkpoints
//! (`--key ssh-agent:COMMENT`) while the secret key files are gone from disk, and OpenSSH
//! `ssh-ed25519` public-key lines are accepted wherever a `.pub` file is (`init --admin`,
//! `key add --pub`, `verify --admin-key`, `proof verify --admin-key`). An agent without the
//! key named gives one line, exit 2, and the ledger is unchanged (docs/FORMAT.md §"Key files").

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::{Out, evl_bin, parts, run};

/// An ssh-agent this test started, killed (by its pid) when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let bin = parts::program_or_apt("ssh-agent", "openssh-client");
        let socket = dir.join("agent.sock");
        let child = Command::new(bin)
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent starts");
        for _ in 0..200 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(socket.exists(), "ssh-agent did not create its socket");
        Agent { child, socket }
    }

    fn ssh_add(&self, args: &[&str]) {
        let bin = parts::program_or_apt("ssh-add", "openssh-client");
        let o = Command::new(bin)
            .args(args)
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ssh-add {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ssh-keygen -t ed25519 -C NAME`: returns (secret key file, `.pub` file).
fn ssh_keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let bin = parts::program_or_apt("ssh-keygen", "openssh-client");
    let key = dir.join(format!("id_{name}"));
    let o = Command::new(bin)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let public = key.with_extension("pub");
    (key, public)
}

struct Setup {
    dir: tempfile::TempDir,
    agent: Agent,
}

impl Setup {
    fn evl(&self, args: &[&str]) -> Out {
        run(evl_bin()
            .env("SSH_AUTH_SOCK", &self.agent.socket)
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .arg("--ledger")
            .arg(self.dir.path().join("ledger"))
            .args(args))
    }
    fn p(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }
}

/// A ledger whose admin (alice) and owner (bob) keys live only in an ssh-agent: the secret
/// key files are deleted once added.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(dir.path());
    let (alice, _) = ssh_keygen(dir.path(), "alice");
    let (bob, _) = ssh_keygen(dir.path(), "bob");
    agent.ssh_add(&["-q", alice.to_str().unwrap(), bob.to_str().unwrap()]);
    std::fs::remove_file(&alice).unwrap();
    std::fs::remove_file(&bob).unwrap();
    let s = Setup { dir, agent };
    let o = s
        .evl(&[
            "init",
            "--origin",
            "example.org/ssh-agent",
            "--admin",
            &s.p("id_alice.pub"),
            "--key",
            "ssh-agent:alice",
            "--at",
            "2026-04-01T00:00:00Z",
        ])
        .ok();
    assert!(o.stdout.contains("created ledger"), "{o:#?}");
    s.evl(&[
        "key",
        "add",
        "bob",
        "--pub",
        &s.p("id_bob.pub"),
        "--role",
        "owner",
        "--key",
        "ssh-agent:alice",
    ])
    .ok();
    s
}

#[test]
fn entries_and_checkpoints_signed_through_the_agent_verify() {
    let s = setup();
    std::fs::write(s.dir.path().join("drill.txt"), b"rollback drill passed").unwrap();
    s.evl(&[
        "add",
        &s.p("drill.txt"),
        "--kind",
        "note",
        "--tier",
        "operational",
        "--key",
        "ssh-agent:bob",
    ])
    .ok();
    let cp = s
        .evl(&["checkpoint", "--json", "--key", "ssh-agent:alice"])
        .ok()
        .json();
    let log = s.evl(&["log", "--json"]).ok().ndjson();
    let names: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["signer_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "alice", "bob"]);
    // Verified with the admin's ssh-ed25519 line as the trust root.
    let v = s
        .evl(&["verify", "--json", "--admin-key", &s.p("id_alice.pub")])
        .ok()
        .json();
    assert_eq!(v["verified"], true, "{v:#}");
    assert_eq!(v["report"]["size"], 3);
    // The checkpoint the agent signed verifies with the note library's verifier key too.
    let id = log[2]["id"].as_str().unwrap();
    let proof = s.p("bob.tlog-proof");
    s.evl(&[
        "proof",
        "inclusion",
        id,
        "--format",
        "tlog-proof",
        "-o",
        &proof,
    ])
    .ok();
    s.evl(&[
        "proof",
        "verify",
        &proof,
        "--no-state",
        "--verifier-key",
        cp["verifier_key"].as_str().unwrap(),
    ])
    .ok();
    s.evl(&[
        "proof",
        "verify",
        &proof,
        "--no-state",
        "--admin-key",
        &s.p("id_alice.pub"),
    ])
    .ok();
    // The ssh line of a key that is not the admin's is not a root.
    s.evl(&[
        "proof",
        "verify",
        &proof,
        "--no-state",
        "--admin-key",
        &s.p("id_bob.pub"),
    ])
    .refused(1, &["--admin-key"]);
}

#[test]
fn an_agent_without_the_key_is_one_line_and_the_ledger_is_unchanged() {
    let s = setup();
    std::fs::write(s.dir.path().join("x.txt"), b"x").unwrap();
    let before = (
        s.evl(&["log", "--json"]).ok().stdout,
        s.evl(&["verify", "--json", "--no-state"]).ok().stdout,
    );
    // bob's key leaves the agent.
    s.agent.ssh_add(&["-q", "-d", &s.p("id_bob.pub")]);
    let add = [
        "add",
        &s.p("x.txt"),
        "--kind",
        "note",
        "--tier",
        "operational",
        "--key",
        "ssh-agent:bob",
    ];
    s.evl(&add)
        .refused(2, &["ssh-agent", "no key with comment 'bob'", "alice"]);
    // No agent at all.
    let o = run(evl_bin()
        .env_remove("SSH_AUTH_SOCK")
        .arg("--ledger")
        .arg(s.dir.path().join("ledger"))
        .args(add));
    o.refused(2, &["SSH_AUTH_SOCK"]);
    // An agent socket that is gone.
    let o = run(evl_bin()
        .env("SSH_AUTH_SOCK", s.dir.path().join("nothing.sock"))
        .arg("--ledger")
        .arg(s.dir.path().join("ledger"))
        .args(add));
    o.refused(2, &["cannot reach the agent"]);
    let after = (
        s.evl(&["log", "--json"]).ok().stdout,
        s.evl(&["verify", "--json", "--no-state"]).ok().stdout,
    );
    assert_eq!(before, after, "the ledger changed");
}
