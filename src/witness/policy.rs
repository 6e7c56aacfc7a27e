//! Witness policies in Sigsum's policy file format (docs/WITNESS.md §"Witness policy"): which
//! log keys may sign a checkpoint, which witnesses exist, and which sets of them form a quorum.
//!
//! The subset read: `log <hex key> [url]`, `witness <name> <hex key> [url]`,
//! `group <name> all|any|<k> <member>...`, `quorum <name>|none`, `#` comments. As Sigsum's
//! Appendix A suggests for C2SP checkpoints, a witness's name is the key name of its
//! cosignature lines, and the policy applies to one origin, given separately (the ledger's).

use std::collections::BTreeMap;
use std::path::Path;

use crate::digest::Digest;
use crate::keys::PublicKey;

use super::{Cosigned, cosigned_by};

/// A witness named by a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWitness {
    pub name: String,
    pub key: PublicKey,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    None,
    Witness(usize),
    Group(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    k: usize,
    members: Vec<Node>,
}

/// A parsed witness policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Log keys (raw Ed25519): when any are listed, a checkpoint must be signed by one.
    pub logs: Vec<PublicKey>,
    pub witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    quorum: Node,
    /// The name on the quorum line.
    pub quorum_name: String,
}

/// How a checkpoint fares against a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumCheck {
    /// Whether the quorum rule is met.
    pub ok: bool,
    /// Policy witnesses with a valid cosignature on the checkpoint.
    pub valid: Vec<String>,
    /// Policy witnesses whose cosignature line is present but does not verify.
    pub invalid: Vec<String>,
    /// The fewest valid cosignatures that can meet the quorum.
    pub needed: usize,
}

impl QuorumCheck {
    /// The one-line reason a checkpoint lacks its quorum.
    pub fn shortfall(&self, quorum: &str) -> String {
        let mut s = format!(
            "the checkpoint lacks its witness quorum: {} valid cosignature(s) from policy witnesses, {} needed (quorum '{quorum}')",
            self.valid.len(),
            self.needed
        );
        if !self.invalid.is_empty() {
            s.push_str(&format!(
                "; cosignature(s) that do not verify: {}",
                self.invalid.join(", ")
            ));
        }
        s
    }
}

fn hex_key(text: &str) -> Option<PublicKey> {
    if text.len() != 64 {
        return None;
    }
    let d: Digest = text.parse().ok()?;
    let pk = PublicKey(d);
    pk.verifying_key().map(|_| pk)
}

impl Policy {
    /// Reads a policy file; errors name the file and line.
    pub fn read(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Policy::parse(&text).map_err(|e| format!("witness policy {}: {e}", path.display()))
    }

    /// Parses policy text.
    pub fn parse(text: &[u8]) -> Result<Policy, String> {
        let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_string())?;
        let mut logs: Vec<PublicKey> = Vec::new();
        let mut witnesses: Vec<PolicyWitness> = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut names: BTreeMap<String, Node> = BTreeMap::new();
        let mut quorum: Option<(Node, String)> = None;
        for (n, raw) in text.split('\n').enumerate() {
            let line = n + 1;
            let err = |m: String| format!("line {line}: {m}");
            if raw
                .chars()
                .any(|c| c.is_ascii_control() && c != '\t' && c != '\r')
            {
                return Err(err("control characters other than tab".into()));
            }
            let content = raw.split('#').next().unwrap_or("");
            let items: Vec<&str> = content.split_ascii_whitespace().collect();
            let Some((&kw, args)) = items.split_first() else {
                continue;
            };
            let define = |names: &mut BTreeMap<String, Node>, name: &str, node: Node| {
                if name == "none" || names.contains_key(name) {
                    return Err(err(format!("the name '{name}' is already defined")));
                }
                names.insert(name.to_string(), node);
                Ok(())
            };
            match kw {
                "log" => {
                    if args.is_empty() || args.len() > 2 {
                        return Err(err("expected 'log <hex public key> [url]'".into()));
                    }
                    let key = hex_key(args[0]).ok_or_else(|| {
                        err(format!("'{}' is not a 64-hex Ed25519 public key", args[0]))
                    })?;
                    if logs.contains(&key) {
                        return Err(err("duplicate log key".into()));
                    }
                    logs.push(key);
                }
                "witness" => {
                    if args.len() < 2 || args.len() > 3 {
                        return Err(err(
                            "expected 'witness <name> <hex public key> [url]'".into()
                        ));
                    }
                    if !signed_note::is_key_name_valid(args[0]) {
                        return Err(err(format!(
                            "'{}' is not a signed-note key name (the witness's cosignature name)",
                            args[0]
                        )));
                    }
                    let key = hex_key(args[1]).ok_or_else(|| {
                        err(format!("'{}' is not a 64-hex Ed25519 public key", args[1]))
                    })?;
                    if witnesses.iter().any(|w| w.key == key) {
                        return Err(err("duplicate witness key".into()));
                    }
                    define(&mut names, args[0], Node::Witness(witnesses.len()))?;
                    witnesses.push(PolicyWitness {
                        name: args[0].to_string(),
                        key,
                        url: args.get(2).map(|u| u.to_string()),
                    });
                }
                "group" => {
                    if args.len() < 3 {
                        return Err(err("expected 'group <name> all|any|<k> <member>...'".into()));
                    }
                    let members_text = &args[2..];
                    let mut members = Vec::new();
                    for m in members_text {
                        let node = names.get(*m).cloned().ok_or_else(|| {
                            err(format!("'{m}' is not defined on an earlier line"))
                        })?;
                        if members.contains(&node) {
                            return Err(err(format!("'{m}' is listed twice")));
                        }
                        members.push(node);
                    }
                    let k = match args[1] {
                        "all" => members.len(),
                        "any" => 1,
                        k => k
                            .parse::<usize>()
                            .ok()
                            .filter(|k| (1..=members.len()).contains(k))
                            .ok_or_else(|| {
                                err(format!(
                                    "the threshold '{k}' is not all, any or 1..={}",
                                    members.len()
                                ))
                            })?,
                    };
                    define(&mut names, args[0], Node::Group(groups.len()))?;
                    groups.push(Group {
                        name: args[0].to_string(),
                        k,
                        members,
                    });
                }
                "quorum" => {
                    if args.len() != 1 {
                        return Err(err("expected 'quorum <name>'".into()));
                    }
                    if quorum.is_some() {
                        return Err(err("a second quorum line".into()));
                    }
                    let node = if args[0] == "none" {
                        Node::None
                    } else {
                        names.get(args[0]).cloned().ok_or_else(|| {
                            err(format!("'{}' is not defined on an earlier line", args[0]))
                        })?
                    };
                    quorum = Some((node, args[0].to_string()));
                }
                other => {
                    return Err(err(format!(
                        "unknown keyword '{other}' (this reader knows log, witness, group, quorum)"
                    )));
                }
            }
        }
        let (quorum, quorum_name) = quorum.ok_or("no quorum line")?;
        Ok(Policy {
            logs,
            witnesses,
            groups,
            quorum,
            quorum_name,
        })
    }

    fn needed(&self, node: &Node) -> usize {
        match node {
            Node::None => 0,
            Node::Witness(_) => 1,
            Node::Group(g) => {
                let g = &self.groups[*g];
                let mut m: Vec<usize> = g.members.iter().map(|n| self.needed(n)).collect();
                m.sort_unstable();
                m.iter().take(g.k).sum()
            }
        }
    }

    fn met(&self, node: &Node, acting: &[bool]) -> bool {
        match node {
            Node::None => true,
            Node::Witness(w) => acting[*w],
            Node::Group(g) => {
                let g = &self.groups[*g];
                g.members.iter().filter(|n| self.met(n, acting)).count() >= g.k
            }
        }
    }

    /// Checks the cosignatures `note` carries against the quorum rule.
    pub fn check(&self, note: &[u8]) -> QuorumCheck {
        let states: Vec<Cosigned> = self
            .witnesses
            .iter()
            .map(|w| cosigned_by(note, &w.name, &w.key))
            .collect();
        let acting: Vec<bool> = states
            .iter()
            .map(|s| matches!(s, Cosigned::Valid(_)))
            .collect();
        let names = |want: fn(&Cosigned) -> bool| {
            self.witnesses
                .iter()
                .zip(&states)
                .filter(|(_, s)| want(s))
                .map(|(w, _)| w.name.clone())
                .collect()
        };
        QuorumCheck {
            ok: self.met(&self.quorum, &acting),
            valid: names(|s| matches!(s, Cosigned::Valid(_))),
            invalid: names(|s| matches!(s, Cosigned::Invalid)),
            needed: self.needed(&self.quorum),
        }
    }

    /// Checks `note` fully: signed by a listed log key (when any is listed) under `origin`,
    /// and cosigned to the quorum. `Err` is the one-line reason.
    pub fn verify(&self, note: &[u8], origin: &str) -> Result<QuorumCheck, String> {
        if !self.logs.is_empty() {
            crate::checkpoint::open(note, origin, &self.logs).map_err(|e| {
                format!("the checkpoint is not signed by a log key of the witness policy: {e}")
            })?;
        }
        let c = self.check(note);
        if c.ok {
            Ok(c)
        } else {
            Err(c.shortfall(&self.quorum_name))
        }
    }

    /// A group's name, for messages.
    pub fn group_names(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    fn hex(k: &SecretKey) -> String {
        hex::encode(k.public().bytes())
    }

    #[test]
    fn groups_thresholds_and_needed() {
        let ks: Vec<SecretKey> = (0..4)
            .map(|i| SecretKey::demo_from_phrase(&format!("w{i}")))
            .collect();
        let text = format!(
            "# test\nwitness a.example/w {}\nwitness b.example/w {} http://b\nwitness c.example/w {}\nwitness d.example/w {}\ngroup abc 2 a.example/w b.example/w c.example/w\ngroup top all abc d.example/w\nquorum top\n",
            hex(&ks[0]),
            hex(&ks[1]),
            hex(&ks[2]),
            hex(&ks[3])
        );
        let p = Policy::parse(text.as_bytes()).unwrap();
        assert_eq!(p.needed(&p.quorum), 3);
        assert_eq!(p.witnesses[1].url.as_deref(), Some("http://b"));
        let log = SecretKey::demo_from_phrase("log");
        let note = crate::checkpoint::sign("o.example", 3, crate::merkle::leaf_hash(b"a"), &log);
        let (body, _) = super::super::split_note(&note).unwrap();
        let sign = |i: usize| {
            let name = ["a.example/w", "b.example/w", "c.example/w", "d.example/w"][i];
            super::super::cosign(name, &ks[i], body, 10).into_bytes()
        };
        let two = super::super::attach(&note, &[sign(0), sign(3)]).unwrap();
        let c = p.check(&two);
        assert!(!c.ok);
        assert_eq!(c.valid.len(), 2);
        let three = super::super::attach(&two, &[sign(2)]).unwrap();
        assert!(p.check(&three).ok);
        assert!(p.verify(&three, "o.example").is_ok());
        let with_log = format!("log {}\n{text}", hex(&ks[0]));
        let p2 = Policy::parse(with_log.as_bytes()).unwrap();
        assert!(p2.verify(&three, "o.example").is_err());
        assert!(Policy::parse(b"quorum x\n").is_err());
        assert!(Policy::parse(b"witness a 00\nquorum a\n").is_err());
        assert!(Policy::parse(b"").is_err());
        assert!(Policy::parse(b"quorum none\n").unwrap().check(&note).ok);
    }
}
