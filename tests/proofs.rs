//! Proofs and checkpoints checked by independent code in this file, not evl's: the RFC 6962
//! tree hash over the entry bytes read straight from the store, inclusion and consistency
//! verification as RFC 9162 §2.1.3.2 and §2.1.4.2 write them, and the C2SP signed note
//! verified with `sha2`, `base64` and `ed25519-dalek` directly.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::{Fixture, RICH_SIZE, rich};

type Hash = [u8; 32];

/// RFC 6962 §2.1 leaf hash: SHA-256(0x00 || entry bytes).
fn leaf(bytes: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(bytes)
        .finalize()
        .into()
}

/// RFC 6962 §2.1 interior node hash: SHA-256(0x01 || left || right).
fn node(l: &Hash, r: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(l)
        .chain_update(r)
        .finalize()
        .into()
}

/// The largest power of two smaller than `n` (n > 1): where RFC 6962 §2.1 splits a tree.
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// RFC 6962 §2.1 Merkle tree hash of `leaves` (non-empty), by the recursive definition.
fn mth(leaves: &[Hash]) -> Hash {
    if leaves.len() == 1 {
        return leaves[0];
    }
    let k = split(leaves.len());
    node(&mth(&leaves[..k]), &mth(&leaves[k..]))
}

/// RFC 9162 §2.1.3.2: does `path` prove `leaf_hash` is leaf `index` of the tree of `size`
/// with root `root`?
fn verify_inclusion(index: u64, size: u64, leaf_hash: Hash, path: &[Hash], root: Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnn, mut sn) = (index, size - 1);
    let mut r = leaf_hash;
    for p in path {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node(p, &r);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == root
}

/// RFC 9162 §2.1.4.2: does `path` prove the tree of `first` leaves with root `first_hash` is
/// a prefix of the tree of `second` leaves with root `second_hash`?
fn verify_consistency(
    first: u64,
    second: u64,
    first_hash: Hash,
    second_hash: Hash,
    path: &[Hash],
) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return path.is_empty() && first_hash == second_hash;
    }
    let mut path = path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_hash);
    }
    if path.is_empty() {
        return false;
    }
    let (mut fnn, mut sn) = (first - 1, second - 1);
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            fr = node(c, &fr);
            sr = node(c, &sr);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node(&sr, c);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    fr == first_hash && sr == second_hash && sn == 0
}

fn unhex(s: &Value) -> Hash {
    hex::decode(s.as_str().expect("a hex string"))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(unhex).collect()
}

/// The leaf hashes of every entry, from the bytes in the store (evl not running).
fn leaves(f: &Fixture) -> Vec<Hash> {
    let entries = common::store::entries(&f.ledger());
    assert_eq!(entries.len() as u64, RICH_SIZE);
    entries.iter().map(|e| leaf(e)).collect()
}

#[test]
fn the_independent_checkers_agree_with_each_other() {
    // Before trusting them on evl's output: on a tree built here, proofs made here by the
    // RFC 6962 §2.1.1 / §2.1.2 definitions verify, and altered ones do not.
    let ls: Vec<Hash> = (0..13u8).map(|i| leaf(&[i])).collect();
    fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
        if d.len() == 1 {
            return vec![];
        }
        let k = split(d.len());
        if m < k {
            let mut p = path(m, &d[..k]);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = path(m - k, &d[k..]);
            p.push(mth(&d[..k]));
            p
        }
    }
    fn subproof(m: usize, d: &[Hash], complete: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if complete { vec![] } else { vec![mth(d)] };
        }
        let k = split(n);
        if m <= k {
            let mut p = subproof(m, &d[..k], complete);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = subproof(m - k, &d[k..], false);
            p.push(mth(&d[..k]));
            p
        }
    }
    for n in 1..=ls.len() {
        let root = mth(&ls[..n]);
        for m in 0..n {
            let p = path(m, &ls[..n]);
            assert!(verify_inclusion(m as u64, n as u64, ls[m], &p, root));
            if let Some(first) = p.first() {
                let mut bad = p.clone();
                bad[0][0] ^= 1;
                assert!(!verify_inclusion(m as u64, n as u64, ls[m], &bad, root));
                assert_ne!(*first, bad[0]);
            }
            assert!(!verify_inclusion(
                m as u64,
                n as u64,
                leaf(b"other"),
                &p,
                root
            ));
        }
        for m in 1..=n {
            let p = subproof(m, &ls[..n], true);
            let old = mth(&ls[..m]);
            assert!(
                verify_consistency(m as u64, n as u64, old, root, &p),
                "{m}->{n}"
            );
            if !p.is_empty() {
                let mut bad = p.clone();
                let last = bad.len() - 1;
                bad[last][5] ^= 1;
                assert!(!verify_consistency(m as u64, n as u64, old, root, &bad));
            }
        }
    }
}

#[test]
fn inclusion_proofs_check_against_the_checkpoint_root() {
    let f = rich().copy();
    let admin = f.key("admin");
    let cp = f
        .evl(["checkpoint", "--json", "--key", admin.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(cp["size"], RICH_SIZE);
    let root = unhex(&cp["root_hash"]);
    let ls = leaves(&f);
    // The checkpoint's root is the RFC 6962 tree hash of the stored entry bytes.
    assert_eq!(mth(&ls), root);

    let log = f.evl(["log", "--json"]).ok().ndjson();
    for (i, e) in log.as_array().unwrap().iter().enumerate() {
        let p = f
            .evl(["proof", "inclusion", e["id"].as_str().unwrap(), "--json"])
            .ok()
            .json();
        assert_eq!(p["kind"], "inclusion");
        assert_eq!(p["leaf_index"], i as u64);
        assert_eq!(p["tree_size"], RICH_SIZE);
        assert_eq!(unhex(&p["leaf_hash"]), ls[i], "leaf hash of entry {i}");
        assert_eq!(unhex(&p["root_hash"]), root);
        let path = hashes(&p["hashes"]);
        assert!(
            verify_inclusion(i as u64, RICH_SIZE, ls[i], &path, root),
            "inclusion proof of entry {i} does not check"
        );
        // Every altered proof fails.
        for j in 0..path.len() {
            let mut bad = path.clone();
            bad[j][17] ^= 0x80;
            assert!(!verify_inclusion(i as u64, RICH_SIZE, ls[i], &bad, root));
        }
        let mut short = path.clone();
        short.pop();
        assert!(!verify_inclusion(i as u64, RICH_SIZE, ls[i], &short, root));
        assert!(!verify_inclusion(
            i as u64,
            RICH_SIZE,
            ls[(i + 1) % ls.len()],
            &path,
            root
        ));
    }

    // Against an older tree size.
    let p = f
        .evl(["proof", "inclusion", f.id("b"), "--size", "11", "--json"])
        .ok()
        .json();
    let old_root = mth(&ls[..11]);
    assert_eq!(unhex(&p["root_hash"]), old_root);
    assert!(verify_inclusion(
        6,
        11,
        ls[6],
        &hashes(&p["hashes"]),
        old_root
    ));

    // A size that does not hold the entry is an input error, not a proof.
    let out = f.evl(["proof", "inclusion", f.id("last"), "--size", "5"]);
    out.refused(2, &["entry 16 is not in a tree of size 5"]);
}

#[test]
fn consistency_proofs_check_between_every_pair_of_sizes() {
    let f = rich().copy();
    let ls = leaves(&f);
    let new_root = mth(&ls);
    for old in 1..=RICH_SIZE {
        let p = f
            .evl(["proof", "consistency", &old.to_string(), "--json"])
            .ok()
            .json();
        assert_eq!(p["kind"], "consistency");
        assert_eq!(p["old_size"], old);
        assert_eq!(p["tree_size"], RICH_SIZE);
        let old_root = mth(&ls[..old as usize]);
        assert_eq!(unhex(&p["old_root_hash"]), old_root);
        assert_eq!(unhex(&p["root_hash"]), new_root);
        let path = hashes(&p["hashes"]);
        assert!(
            verify_consistency(old, RICH_SIZE, old_root, new_root, &path),
            "consistency proof {old} -> {RICH_SIZE} does not check"
        );
        for j in 0..path.len() {
            let mut bad = path.clone();
            bad[j][0] ^= 1;
            assert!(!verify_consistency(
                old, RICH_SIZE, old_root, new_root, &bad
            ));
        }
        if old < RICH_SIZE {
            // The proof does not vouch for another old root.
            let other = mth(&ls[1..old as usize + 1]);
            assert!(!verify_consistency(old, RICH_SIZE, other, new_root, &path));
        }
    }
    // Between two explicit sizes.
    let p = f
        .evl(["proof", "consistency", "6", "13", "--json"])
        .ok()
        .json();
    assert!(verify_consistency(
        6,
        13,
        mth(&ls[..6]),
        mth(&ls[..13]),
        &hashes(&p["hashes"])
    ));
    let out = f.evl(["proof", "consistency", "5", "99"]);
    out.refused(2, &["the ledger has 17 entries"]);
    let out = f.evl(["proof", "consistency", "9", "4"]);
    out.refused(2, &["cannot prove consistency from size 9 to size 4"]);
}

#[test]
fn consistency_from_the_empty_tree_is_not_reported_as_corruption() {
    let f = rich().copy();
    // RFC 9162 §2.1.4 defines consistency proofs from a non-empty tree only: size 0 is an
    // input error (exit 2) that says what sizes are allowed (docs/FORMAT.md §"The log"),
    // never "corrupt" with the tampered exit code.
    for args in [
        &["proof", "consistency", "0"][..],
        &["proof", "consistency", "0", "5"],
    ] {
        let out = f.evl(args);
        out.refused(
            2,
            &["cannot prove consistency from size 0", "1 <= old <= new"],
        );
        assert!(!out.stderr.contains("corrupt"), "{out:#?}");
    }
}

/// A C2SP signed note split into its text (ending in a newline) and signature lines.
fn split_note(note: &str) -> (&str, Vec<&str>) {
    let cut = note.find("\n\n").expect("a blank line ends the note text");
    let text = &note[..cut + 1];
    let sigs = note[cut + 2..].lines().collect();
    (text, sigs)
}

/// Verifies a signed note by the C2SP signed-note spec with verifier key
/// `<name>+<hex key id>+<base64(0x01 || ed25519 public key)>`. Returns the text.
fn verify_note(note: &str, vkey: &str) -> Result<String, String> {
    let mut parts = vkey.splitn(3, '+');
    let (name, id_hex, key_b64) = (
        parts.next().ok_or("no name")?,
        parts.next().ok_or("no key id")?,
        parts.next().ok_or("no key")?,
    );
    let key = B64.decode(key_b64).map_err(|e| e.to_string())?;
    if key.len() != 33 || key[0] != 0x01 {
        return Err("not an Ed25519 verifier key".into());
    }
    let key_id: [u8; 4] = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update(&key)
        .finalize()[..4]
        .try_into()
        .unwrap();
    if hex::encode(key_id) != id_hex {
        return Err(format!(
            "verifier key id {id_hex} is not {}",
            hex::encode(key_id)
        ));
    }
    let vk = VerifyingKey::from_bytes(key[1..].try_into().unwrap()).map_err(|e| e.to_string())?;
    let (text, sigs) = split_note(note);
    for line in sigs {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return Err(format!("malformed signature line {line:?}"));
        };
        let (signer, sig_b64) = rest.rsplit_once(' ').ok_or("no signature")?;
        if signer != name {
            continue;
        }
        let sig = B64.decode(sig_b64).map_err(|e| e.to_string())?;
        if sig.len() != 68 || sig[..4] != key_id {
            continue;
        }
        let sig = Signature::from_bytes(sig[4..].try_into().unwrap());
        return vk
            .verify_strict(text.as_bytes(), &sig)
            .map(|()| text.to_string())
            .map_err(|e| format!("signature does not verify: {e}"));
    }
    Err("no signature by the verifier key".into())
}

#[test]
fn checkpoint_note_verifies_with_an_independent_signed_note_check() {
    let f = rich().copy();
    let admin = f.key("admin");
    let file = f.path("today.note");
    let cp = f
        .evl([
            "checkpoint",
            "--json",
            "--key",
            admin.to_str().unwrap(),
            "-o",
            file.to_str().unwrap(),
        ])
        .ok()
        .json();
    let note = cp["note"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), note);
    let vkey = cp["verifier_key"].as_str().unwrap();
    assert!(vkey.starts_with(&format!("{}+", common::ORIGIN)), "{vkey}");

    // The verifier key is the admin's registered key.
    let keys = f.evl(["key", "list", "--json"]).ok().json()["keys"].clone();
    let admin_pk = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "admin")
        .unwrap()["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    // The base64 part may itself contain '+': split off name and key id only.
    let vk_bytes = B64.decode(vkey.splitn(3, '+').nth(2).unwrap()).unwrap();
    assert_eq!(hex::encode(&vk_bytes[1..]), admin_pk);

    let text = verify_note(note, vkey).expect("the checkpoint verifies");
    // C2SP tlog-checkpoint body: origin, size, base64 root hash.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text:?}");
    assert_eq!(lines[0], common::ORIGIN);
    assert_eq!(lines[1], RICH_SIZE.to_string());
    let root: Hash = B64.decode(lines[2]).unwrap().try_into().unwrap();
    assert_eq!(hex::encode(root), cp["root_hash"].as_str().unwrap());
    assert_eq!(root, mth(&leaves(&f)));

    // Altered notes fail the independent check.
    let edited = note.replacen("\n17\n", "\n18\n", 1);
    assert!(verify_note(&edited, vkey).is_err());
    let (body, sigs) = split_note(note);
    let (head, sig) = sigs[0].rsplit_once(' ').unwrap();
    let mut raw = B64.decode(sig).unwrap();
    raw[40] ^= 1;
    let forged = format!("{body}\n{head} {}\n", B64.encode(raw));
    assert!(
        verify_note(&forged, vkey)
            .unwrap_err()
            .contains("does not verify")
    );
    // Another key's verifier key does not accept it.
    let other = f
        .evl([
            "keygen",
            "other",
            "--json",
            "--dir",
            f.path("keys").to_str().unwrap(),
        ])
        .ok()
        .json();
    let other_pk = hex::decode(other["public_key"].as_str().unwrap()).unwrap();
    let mut k = vec![1u8];
    k.extend(other_pk);
    let id = &Sha256::new()
        .chain_update(common::ORIGIN)
        .chain_update(b"\n")
        .chain_update(&k)
        .finalize()[..4];
    let other_vkey = format!("{}+{}+{}", common::ORIGIN, hex::encode(id), B64.encode(&k));
    assert!(verify_note(note, &other_vkey).is_err());
}
