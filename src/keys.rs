//! Ed25519 signing keys: key ids, roles, and the key files signers already have.
//!
//! evl writes secret keys as PKCS#8 PEM (the format `openssl genpkey -algorithm ed25519`
//! writes) with mode 0600, and reads PKCS#8 PEM and unencrypted OpenSSH ed25519 keys. A secret
//! key file readable by group or others is refused. Public key files are one line:
//! `ed25519 <64 hex> <name>`; PEM SubjectPublicKeyInfo and OpenSSH `ssh-ed25519` lines are
//! accepted too.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::pkcs8::{
    self, DecodePrivateKey, DecodePublicKey, EncodePrivateKey, KeypairBytes,
};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::Digest;
use crate::domain;

/// A 32-byte Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub Digest);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0.0
    }
    /// The key's id: BLAKE3(`evl/key-id/v1\n` || public key).
    pub fn id(&self) -> KeyId {
        KeyId(Digest::of_parts(&[domain::KEY_ID, self.bytes()]))
    }
    /// The dalek verifying key, or `None` for bytes that are not a curve point.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(self.bytes()).ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.0.short())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

/// The id of a signing key: a BLAKE3 digest of its public key (docs/FORMAT.md §"Key id").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct KeyId(pub Digest);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0.short())
    }
}

/// What a registered key may sign. Encoded as its variant index (docs/FORMAT.md).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Manages the key registry and signs checkpoints.
    Admin,
    /// Owns packets: adds evidence, pins revisions, promotes excluded material.
    Owner,
    /// Annotates evidence and packets.
    Reviewer,
    /// Signs acknowledgments.
    SecuritySigner,
    /// Records the human gate decision.
    GateChair,
}

impl Role {
    /// Every role, in canonical order.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Owner,
        Role::Reviewer,
        Role::SecuritySigner,
        Role::GateChair,
    ];
    /// The role's name as written on the command line and in gate definitions.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Owner => "owner",
            Role::Reviewer => "reviewer",
            Role::SecuritySigner => "security-signer",
            Role::GateChair => "gate-chair",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A role name that evl does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown role '{0}': expected one of admin, owner, reviewer, security-signer, gate-chair")]
pub struct ParseRoleError(pub String);

impl FromStr for Role {
    type Err = ParseRoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| ParseRoleError(s.to_string()))
    }
}

/// A 64-byte Ed25519 signature. Canonical form: 64 raw bytes; JSON form: hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureBytes(pub [u8; 64]);

impl fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..6]))
    }
}

impl Serialize for SignatureBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        if s.is_human_readable() {
            return s.serialize_str(&hex::encode(self.0));
        }
        let mut t = s.serialize_tuple(64)?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for SignatureBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SignatureBytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = a
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(SignatureBytes(out))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let mut out = [0u8; 64];
                hex::decode_to_slice(v, &mut out).map_err(E::custom)?;
                Ok(SignatureBytes(out))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_tuple(64, V)
        }
    }
}

/// A secret signing key: in memory, or held by an `ssh-agent` that signs on request (the
/// secret never leaves the agent). Never printed: `Debug` shows only the key id.
pub struct SecretKey {
    key: Held,
}

enum Held {
    Memory(SigningKey),
    Agent(AgentKey),
}

/// An Ed25519 key an ssh-agent holds: the agent's socket and the key's public half.
struct AgentKey {
    socket: PathBuf,
    ssh: ssh_key::PublicKey,
    public: PublicKey,
}

/// The prefix of a `--key` value that names a key held by ssh-agent.
pub const AGENT_PREFIX: &str = "ssh-agent:";

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(id {})", self.public().id().0.short())
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> SecretKey {
        SecretKey {
            key: Held::Memory(SigningKey::generate(&mut rand_core::OsRng)),
        }
    }

    /// The key whose 32-byte Ed25519 seed is BLAKE3(`seed_phrase`). Used only for the published
    /// demo keys under `keys/`: anyone who knows the phrase has the key.
    pub fn demo_from_phrase(seed_phrase: &str) -> SecretKey {
        SecretKey {
            key: Held::Memory(SigningKey::from_bytes(
                &Digest::of(seed_phrase.as_bytes()).0,
            )),
        }
    }

    /// Wraps a raw 32-byte Ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey {
            key: Held::Memory(SigningKey::from_bytes(&seed)),
        }
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        match &self.key {
            Held::Memory(k) => PublicKey(Digest(k.verifying_key().to_bytes())),
            Held::Agent(a) => a.public,
        }
    }

    /// Signs `msg` (Ed25519, RFC 8032). A key in memory cannot fail; an agent's key can (the
    /// agent went away, or refused): use [`SecretKey::try_sign`] where that can happen.
    pub fn sign(&self, msg: &[u8]) -> SignatureBytes {
        self.try_sign(msg)
            .expect("keys: signing with an ssh-agent key failed (use try_sign)")
    }

    /// Signs `msg`, in memory or by asking the ssh-agent that holds the key. The agent's
    /// signature is checked against the key before it is used.
    pub fn try_sign(&self, msg: &[u8]) -> Result<SignatureBytes, KeyError> {
        match &self.key {
            Held::Memory(k) => Ok(SignatureBytes(k.sign(msg).to_bytes())),
            Held::Agent(a) => {
                let err = |why: String| KeyError::Agent(why);
                let mut c = ssh_agent_client_rs::Client::connect(&a.socket).map_err(|e| {
                    err(format!(
                        "cannot reach the agent at {}: {e}",
                        a.socket.display()
                    ))
                })?;
                let sig = c.sign(&a.ssh, msg).map_err(|e| {
                    err(format!(
                        "the agent did not sign with key {}: {e}",
                        a.ssh.comment()
                    ))
                })?;
                let bytes: [u8; 64] = sig.as_bytes().try_into().map_err(|_| {
                    err(format!(
                        "the agent returned a {} signature, not Ed25519",
                        sig.algorithm()
                    ))
                })?;
                let sig = SignatureBytes(bytes);
                if !verify(&a.public, msg, &sig) {
                    return Err(err(
                        "the agent's signature does not verify under its key".into()
                    ));
                }
                Ok(sig)
            }
        }
    }

    /// The key held by the ssh-agent at `SSH_AUTH_SOCK` whose comment (or `SHA256:`
    /// fingerprint) is `selector`; it must be Ed25519 and the only such key.
    pub fn from_agent(selector: &str) -> Result<SecretKey, KeyError> {
        let err = |why: String| KeyError::Agent(why);
        let socket = std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| {
                err("SSH_AUTH_SOCK is not set: start ssh-agent and ssh-add the key".into())
            })?;
        let mut c = ssh_agent_client_rs::Client::connect(&socket).map_err(|e| {
            err(format!(
                "cannot reach the agent at {}: {e}",
                socket.display()
            ))
        })?;
        let ids = c
            .list_all_identities()
            .map_err(|e| err(format!("cannot list the agent's keys: {e}")))?;
        let keys: Vec<ssh_key::PublicKey> = ids
            .into_iter()
            .filter_map(|i| match i {
                ssh_agent_client_rs::Identity::PublicKey(k) => Some(k.into_owned()),
                _ => None,
            })
            .collect();
        let chosen: Vec<&ssh_key::PublicKey> = keys
            .iter()
            .filter(|k| {
                k.comment() == selector || k.fingerprint(Default::default()).to_string() == selector
            })
            .collect();
        let names = || {
            let n: Vec<&str> = keys.iter().map(|k| k.comment()).collect();
            if n.is_empty() {
                "none".to_string()
            } else {
                n.join(", ")
            }
        };
        let k = match chosen.as_slice() {
            [] => {
                return Err(err(format!(
                    "the agent holds no key with comment '{selector}' (it holds: {})",
                    names()
                )));
            }
            [k] => *k,
            _ => {
                return Err(err(format!(
                    "the agent holds {} keys with comment '{selector}'; name one by its SHA256 fingerprint",
                    chosen.len()
                )));
            }
        };
        let Some(ed) = k.key_data().ed25519() else {
            return Err(err(format!(
                "the agent's key '{selector}' is {}, not ed25519",
                k.algorithm()
            )));
        };
        Ok(SecretKey {
            key: Held::Agent(AgentKey {
                socket,
                ssh: k.clone(),
                public: PublicKey(Digest(ed.0)),
            }),
        })
    }

    /// The dalek signing key, for libraries that take one; `None` for a key an agent holds.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        match &self.key {
            Held::Memory(k) => Some(k),
            Held::Agent(_) => None,
        }
    }

    /// PKCS#8 PEM: a version-2 OneAsymmetricKey (RFC 5958), the public key beside the secret, as
    /// ed25519-dalek writes it. `openssl genpkey -algorithm ed25519` writes version 1 (the secret
    /// alone); evl reads both. Only for keys in memory (evl writes only keys it generated).
    pub fn to_pkcs8_pem(&self) -> String {
        self.signing_key()
            .expect("keys: an ssh-agent key has no secret to write")
            .to_pkcs8_pem(Default::default())
            .expect("keys: PKCS#8 encoding of an Ed25519 key cannot fail")
            .to_string()
    }
}

/// Whether `sig` is a valid Ed25519 signature of `msg` under `public` by evl's rule
/// (docs/FORMAT.md §"Signature validity"): canonical encodings, no small-order points, the
/// cofactored equation. `evl verify`'s batch equation accepts exactly the same signatures.
pub fn verify(public: &PublicKey, msg: &[u8], sig: &SignatureBytes) -> bool {
    crate::batch_verify::verify_one(public.bytes(), msg, &sig.0)
}

/// Everything that can be wrong with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} already exists; refusing to overwrite a key file")]
    Exists { path: PathBuf },
    #[error(
        "secret key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}` and try again"
    )]
    OpenPermissions { path: PathBuf, mode: u32 },
    #[error("{path} is not an Ed25519 secret key: {reason}")]
    MalformedSecret { path: PathBuf, reason: String },
    #[error("{path} is not an Ed25519 public key: {reason}")]
    MalformedPublic { path: PathBuf, reason: String },
    #[error("'{0}' is not a valid key name: use letters, digits, '.', '_' or '-'")]
    BadName(String),
    #[error("ssh-agent: {0}")]
    Agent(String),
}

/// Checks that a key name is usable as a file name and in a signed-note key name.
pub fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName(name.to_string()))
    }
}

/// Reads a secret key, refusing a file readable by group or others. `ssh-agent:COMMENT`
/// names a key held by ssh-agent instead ([`SecretKey::from_agent`]).
pub fn read_secret(path: &Path) -> Result<SecretKey, KeyError> {
    if let Some(sel) = path.to_str().and_then(|p| p.strip_prefix(AGENT_PREFIX)) {
        return SecretKey::from_agent(sel);
    }
    let read_err = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(read_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::OpenPermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    if meta.len() > 64 * 1024 {
        return Err(KeyError::MalformedSecret {
            path: path.to_path_buf(),
            reason: "file is larger than any key file".into(),
        });
    }
    let text = fs::read_to_string(path).map_err(read_err)?;
    parse_secret(&text).map_err(|reason| KeyError::MalformedSecret {
        path: path.to_path_buf(),
        reason,
    })
}

/// Parses PKCS#8 PEM or an unencrypted OpenSSH ed25519 private key. Lines starting with `#`
/// before the PEM block (the DEMO ONLY banner of demo keys) are ignored.
pub fn parse_secret(text: &str) -> Result<SecretKey, String> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let body = body.trim();
    if body.contains("BEGIN OPENSSH PRIVATE KEY") {
        let key =
            ssh_key::PrivateKey::from_openssh(body).map_err(|e| format!("OpenSSH key: {e}"))?;
        if key.is_encrypted() {
            return Err("the OpenSSH key is passphrase-protected; evl needs an unencrypted key (ssh-keygen -p -N '' -f FILE on a copy)".into());
        }
        let Some(kp) = key.key_data().ed25519() else {
            return Err(format!(
                "the OpenSSH key is {}, not ed25519",
                key.algorithm()
            ));
        };
        return Ok(SecretKey::from_seed(kp.private.to_bytes()));
    }
    if body.contains("BEGIN PRIVATE KEY") {
        // As `SigningKey::from_pkcs8_pem`, which also refuses a file whose public key is not
        // the secret key's, but comparing the public key's bytes instead of decompressing it
        // first: the same keys pass, and a single `evl add` runs 4 % fewer instructions.
        let pair = KeypairBytes::from_pkcs8_pem(body).map_err(|e| format!("PKCS#8: {e}"))?;
        let key = SigningKey::from_bytes(&pair.secret_key);
        if let Some(public) = &pair.public_key
            && key.verifying_key().as_bytes() != public.as_ref()
        {
            return Err(format!("PKCS#8: {}", pkcs8::Error::KeyMalformed));
        }
        return Ok(SecretKey {
            key: Held::Memory(key),
        });
    }
    if body.contains("BEGIN ENCRYPTED PRIVATE KEY") {
        return Err("the PKCS#8 key is encrypted; evl needs an unencrypted key".into());
    }
    Err("expected a PKCS#8 PEM block (BEGIN PRIVATE KEY) or an OpenSSH private key".into())
}

/// Reads a public key file (`ed25519 <hex> [name]`, PEM SubjectPublicKeyInfo, or an OpenSSH
/// `ssh-ed25519` line). Returns the key and the name it carries, if any.
pub fn read_public(path: &Path) -> Result<(PublicKey, Option<String>), KeyError> {
    let text = fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_public(&text).map_err(|reason| KeyError::MalformedPublic {
        path: path.to_path_buf(),
        reason,
    })
}

/// Parses the public key formats `read_public` accepts.
pub fn parse_public(text: &str) -> Result<(PublicKey, Option<String>), String> {
    let text = text.trim();
    if text.contains("BEGIN PUBLIC KEY") {
        let vk = VerifyingKey::from_public_key_pem(text).map_err(|e| format!("SPKI PEM: {e}"))?;
        return Ok((PublicKey(Digest(vk.to_bytes())), None));
    }
    if text.starts_with("ssh-ed25519 ") {
        let key =
            ssh_key::PublicKey::from_openssh(text).map_err(|e| format!("OpenSSH key: {e}"))?;
        let kp = key
            .key_data()
            .ed25519()
            .ok_or("the OpenSSH key is not ed25519")?;
        let comment = key.comment().trim();
        let name = (!comment.is_empty()).then(|| comment.to_string());
        return Ok((PublicKey(Digest(kp.0)), name));
    }
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some("ed25519"), Some(hexkey), name) => {
            let d: Digest = hexkey
                .parse()
                .map_err(|e: crate::digest::ParseDigestError| e.to_string())?;
            let pk = PublicKey(d);
            if pk.verifying_key().is_none() {
                return Err("the 32 bytes are not a valid Ed25519 point".into());
            }
            Ok((pk, name.map(str::to_string)))
        }
        _ => Err(
            "expected `ed25519 <64 hex> <name>`, a PEM public key, or an `ssh-ed25519` line".into(),
        ),
    }
}

/// The one-line public key file format evl writes.
pub fn public_line(public: &PublicKey, name: &str) -> String {
    format!("ed25519 {} {}\n", public, name)
}

/// Writes `NAME.key` (PKCS#8 PEM, mode 0600, created exclusively) and `NAME.pub` into `dir`.
/// `banner` lines (each starting with `#`) are written above the PEM block.
pub fn write_key_pair(
    dir: &Path,
    name: &str,
    key: &SecretKey,
    banner: &str,
) -> Result<(PathBuf, PathBuf), KeyError> {
    check_name(name)?;
    fs::create_dir_all(dir).map_err(|source| KeyError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let secret_path = dir.join(format!("{name}.key"));
    let public_path = dir.join(format!("{name}.pub"));
    for p in [&secret_path, &public_path] {
        if p.exists() {
            return Err(KeyError::Exists { path: p.clone() });
        }
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Write { path, source }
    };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&secret_path).map_err(write_err(&secret_path))?;
    f.write_all(banner.as_bytes())
        .and_then(|_| f.write_all(key.to_pkcs8_pem().as_bytes()))
        .and_then(|_| f.sync_all())
        .map_err(write_err(&secret_path))?;
    fs::write(&public_path, public_line(&key.public(), name)).map_err(write_err(&public_path))?;
    Ok((secret_path, public_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs8_round_trip_and_sign_verify() {
        let k = SecretKey::generate();
        let back = parse_secret(&k.to_pkcs8_pem()).unwrap();
        assert_eq!(back.public(), k.public());
        let sig = k.sign(b"msg");
        assert!(verify(&k.public(), b"msg", &sig));
        assert!(!verify(&k.public(), b"msh", &sig));
    }

    #[test]
    fn a_pkcs8_file_whose_public_key_is_another_keys_is_refused() {
        let (a, b) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
        let pair = |public: &SecretKey| {
            KeypairBytes {
                secret_key: [1; 32],
                public_key: Some(pkcs8::PublicKeyBytes(*public.public().bytes())),
            }
            .to_pkcs8_pem(Default::default())
            .unwrap()
            .to_string()
        };
        assert_eq!(parse_secret(&pair(&a)).unwrap().public(), a.public());
        let err = parse_secret(&pair(&b)).expect_err("refused");
        assert!(err.starts_with("PKCS#8: "), "{err}");
        // Without a public key the secret alone decides.
        let bare = KeypairBytes {
            secret_key: [1; 32],
            public_key: None,
        };
        let pem = bare.to_pkcs8_pem(Default::default()).unwrap();
        assert_eq!(parse_secret(&pem).unwrap().public(), a.public());
    }

    #[test]
    fn public_line_round_trips() {
        let k = SecretKey::demo_from_phrase("test");
        let (pk, name) = parse_public(&public_line(&k.public(), "alice")).unwrap();
        assert_eq!(pk, k.public());
        assert_eq!(name.as_deref(), Some("alice"));
        assert!(parse_public("ed25519 zz alice").is_err());
    }

    #[test]
    fn debug_never_shows_secret_bytes() {
        let k = SecretKey::from_seed([7; 32]);
        let shown = format!("{k:?}");
        assert!(!shown.contains(&hex::encode([7u8; 32])));
        assert!(shown.starts_with("SecretKey(id "));
    }
}
