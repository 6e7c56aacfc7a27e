//! The key registry: which keys may sign what, at each position of the log.
//!
//! The registry is a pure fold over the log's key entries (genesis, key-add, key-rotate,
//! key-revoke). A signature counts only if, at its position, the signer was registered, held
//! the payload's required role and had not been revoked or rotated away.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::entry::{Entry, KeyGrant, KeyRotate, Payload};
use crate::keys::{KeyId, PublicKey, Role};

/// One registered key and its history.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct KeyState {
    pub name: String,
    pub public_key: PublicKey,
    pub roles: Vec<Role>,
    /// Log index of the entry that registered it.
    pub added_at: u64,
    /// Log index from which it no longer counts (revoked or rotated away).
    pub revoked_at: Option<u64>,
    /// Why it stopped counting.
    pub revoked_reason: Option<String>,
}

impl KeyState {
    /// Whether the key counts at log position `index`.
    pub fn active_at(&self, index: u64) -> bool {
        self.added_at <= index && self.revoked_at.is_none_or(|r| index < r)
    }
}

/// Why a signature or key entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("signer key {0} is not registered in this ledger")]
    UnknownKey(String),
    #[error("signer key '{name}' ({id}) was revoked at log position {at}{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Revoked {
        name: String,
        id: String,
        at: u64,
        reason: Option<String>,
    },
    #[error(
        "signer key '{name}' lacks the {role} role needed to sign {kind} entries (it holds: {held})"
    )]
    MissingRole {
        name: String,
        role: Role,
        kind: &'static str,
        held: String,
    },
    #[error("the signature does not verify against signer key '{0}'")]
    BadSignature(String),
    #[error("{0}")]
    Registry(String),
}

/// Registry state at some position of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    keys: BTreeMap<KeyId, KeyState>,
}

fn short(id: &KeyId) -> String {
    id.0.short()
}

impl Registry {
    /// The state after the genesis entry at index 0.
    pub fn from_genesis(grants: &[KeyGrant]) -> Result<Registry, AuthError> {
        let mut r = Registry::default();
        if grants.is_empty() {
            return Err(AuthError::Registry("genesis names no admin key".into()));
        }
        for g in grants {
            if !g.roles.contains(&Role::Admin) {
                return Err(AuthError::Registry(format!(
                    "genesis key '{}' must hold the admin role",
                    g.name
                )));
            }
            r.add(g, 0)?;
        }
        Ok(r)
    }

    /// Rebuilds from stored key states (the store's index).
    pub fn from_states(states: impl IntoIterator<Item = KeyState>) -> Registry {
        Registry {
            keys: states.into_iter().map(|s| (s.public_key.id(), s)).collect(),
        }
    }

    /// Every key, by id.
    pub fn keys(&self) -> &BTreeMap<KeyId, KeyState> {
        &self.keys
    }

    /// The key with this id.
    pub fn get(&self, id: &KeyId) -> Option<&KeyState> {
        self.keys.get(id)
    }

    /// The most recent key registered under `name` that is still active.
    pub fn by_name(&self, name: &str) -> Option<(&KeyId, &KeyState)> {
        self.keys
            .iter()
            .filter(|(_, s)| s.name == name)
            .max_by_key(|(_, s)| s.added_at)
    }

    fn add(&mut self, g: &KeyGrant, index: u64) -> Result<(), AuthError> {
        crate::keys::check_name(&g.name).map_err(|e| AuthError::Registry(e.to_string()))?;
        match g.public_key.verifying_key() {
            None => {
                return Err(AuthError::Registry(format!(
                    "key '{}' is not a valid Ed25519 public key",
                    g.name
                )));
            }
            // A small-order key cannot make a signature that verifies strictly; batch
            // equations would accept anything "signed" with it.
            Some(vk) if vk.is_weak() => {
                return Err(AuthError::Registry(format!(
                    "key '{}' is a small-order (weak) Ed25519 key, which no signature can verify under",
                    g.name
                )));
            }
            Some(_) => {}
        }
        let id = g.public_key.id();
        if self.keys.contains_key(&id) {
            return Err(AuthError::Registry(format!(
                "key {} is already registered",
                short(&id)
            )));
        }
        if self
            .keys
            .values()
            .any(|s| s.name == g.name && s.revoked_at.is_none())
        {
            return Err(AuthError::Registry(format!(
                "a key named '{}' is already registered; rotate it instead",
                g.name
            )));
        }
        if g.roles.is_empty() {
            return Err(AuthError::Registry(format!(
                "key '{}' is given no role",
                g.name
            )));
        }
        let mut roles = g.roles.clone();
        roles.sort();
        roles.dedup();
        self.keys.insert(
            id,
            KeyState {
                name: g.name.clone(),
                public_key: g.public_key,
                roles,
                added_at: index,
                revoked_at: None,
                revoked_reason: None,
            },
        );
        Ok(())
    }

    /// Checks that `entry`, at log position `index`, is signed by a key that counts there and
    /// holds the role its payload needs. Does not check the signature bytes.
    pub fn authorize(&self, entry: &Entry, index: u64) -> Result<&KeyState, AuthError> {
        let id = &entry.body.signer;
        let state = self
            .keys
            .get(id)
            .ok_or_else(|| AuthError::UnknownKey(short(id)))?;
        if !state.active_at(index) {
            return Err(AuthError::Revoked {
                name: state.name.clone(),
                id: short(id),
                at: state.revoked_at.unwrap_or(0),
                reason: state.revoked_reason.clone(),
            });
        }
        let role = entry.body.payload.required_role();
        if !state.roles.contains(&role) {
            return Err(AuthError::MissingRole {
                name: state.name.clone(),
                role,
                kind: entry.body.payload.kind(),
                held: state
                    .roles
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(state)
    }

    /// Authorizes `entry` at `index`, verifies its signature, and applies it if it changes
    /// the registry. `genesis` is the ledger's genesis entry id (zero while applying genesis).
    pub fn check_and_apply(
        &mut self,
        entry: &Entry,
        index: u64,
        genesis: &Digest,
    ) -> Result<(), AuthError> {
        self.check_and_apply_verified(entry, index, genesis, None)
    }

    /// Like [`Registry::check_and_apply`], for an entry whose signature may have been verified
    /// already, under `verified_under`: the curve arithmetic is skipped only when that is the
    /// very key the registry holds for the signer at `index` (so a key revoked, rotated or never
    /// registered is refused exactly as before); otherwise the signature is verified here.
    pub fn check_and_apply_verified(
        &mut self,
        entry: &Entry,
        index: u64,
        genesis: &Digest,
        verified_under: Option<&PublicKey>,
    ) -> Result<(), AuthError> {
        // Only genesis and key entries change the registry; for any other entry admitting it
        // changes nothing, so there is nothing to undo when its signature fails and no copy
        // to make (one per entry in a batch append).
        let changes = matches!(
            entry.body.payload,
            Payload::Genesis(_)
                | Payload::KeyAdd(_)
                | Payload::KeyRotate(_)
                | Payload::KeyRevoke(_)
        );
        let mut copy = changes.then(|| self.clone());
        let next = copy.as_mut().unwrap_or(&mut *self);
        let public = next.admit_unverified(entry, index, genesis)?;
        if verified_under != Some(&public) && !entry.signature_valid(&public) {
            let name = next
                .get(&entry.body.signer)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            return Err(AuthError::BadSignature(name));
        }
        if let Some(next) = copy {
            *self = next;
        }
        Ok(())
    }

    /// Like [`Registry::check_and_apply`] but leaves the signature bytes unchecked, returning
    /// the signer's public key so the caller can batch-verify many signatures at once.
    pub fn admit_unverified(
        &mut self,
        entry: &Entry,
        index: u64,
        genesis: &Digest,
    ) -> Result<PublicKey, AuthError> {
        if index == 0 {
            let Payload::Genesis(g) = &entry.body.payload else {
                return Err(AuthError::Registry(
                    "the first entry of a ledger must be its genesis".into(),
                ));
            };
            if entry.body.ledger != Digest::ZERO {
                return Err(AuthError::Registry(
                    "the genesis entry must name no parent ledger".into(),
                ));
            }
            *self = Registry::from_genesis(&g.admins)?;
        } else if matches!(entry.body.payload, Payload::Genesis(_)) {
            return Err(AuthError::Registry(
                "a genesis entry can only be the first entry".into(),
            ));
        } else if entry.body.ledger != *genesis {
            return Err(AuthError::Registry(format!(
                "entry belongs to ledger {} but this ledger is {}",
                entry.body.ledger.short(),
                genesis.short()
            )));
        }
        let public = self.authorize(entry, index)?.public_key;
        self.apply(entry, index)?;
        Ok(public)
    }

    /// Applies a key entry's effect (no-op for other kinds). The caller has authorized it.
    /// A refused entry changes nothing: `evl verify` folds on past an entry it names, and a
    /// half-applied rotation would misjudge every later entry.
    pub fn apply(&mut self, entry: &Entry, index: u64) -> Result<(), AuthError> {
        match &entry.body.payload {
            Payload::KeyAdd(g) => self.add(g, index),
            Payload::KeyRotate(r) => {
                let mut next = self.clone();
                next.rotate(r, index)?;
                *self = next;
                Ok(())
            }
            Payload::KeyRevoke(r) => self.retire(&r.key, index, r.reason.clone(), false),
            _ => Ok(()),
        }
    }

    /// Retires the rotated key and registers its successor (two steps, so on a copy).
    fn rotate(&mut self, r: &KeyRotate, index: u64) -> Result<(), AuthError> {
        let old = self
            .keys
            .get(&r.old)
            .filter(|s| s.active_at(index))
            .ok_or_else(|| {
                AuthError::Registry(format!(
                    "cannot rotate key {}: it is not an active key",
                    short(&r.old)
                ))
            })?
            .clone();
        self.retire(
            &r.old,
            index,
            format!("rotated to {}", short(&r.new_key.id())),
            true,
        )?;
        let grant = KeyGrant {
            name: old.name,
            public_key: r.new_key,
            roles: old.roles,
        };
        self.add(&grant, index)
    }

    /// Retires `id` at `index`. Only a rotation (which registers the successor with the same
    /// roles) may retire the last active admin; a revocation's reason is the signer's text and
    /// decides nothing.
    fn retire(
        &mut self,
        id: &KeyId,
        index: u64,
        reason: String,
        rotation: bool,
    ) -> Result<(), AuthError> {
        let active_admins = self
            .keys
            .iter()
            .filter(|(k, s)| *k != id && s.active_at(index) && s.roles.contains(&Role::Admin))
            .count();
        let state = self
            .keys
            .get_mut(id)
            .ok_or_else(|| AuthError::Registry(format!("key {} is not registered", short(id))))?;
        if !state.active_at(index) {
            return Err(AuthError::Registry(format!(
                "key '{}' is already revoked",
                state.name
            )));
        }
        if state.roles.contains(&Role::Admin) && active_admins == 0 && !rotation {
            return Err(AuthError::Registry(format!(
                "refusing to revoke '{}': it is the last active admin key and the ledger would have no admin",
                state.name
            )));
        }
        state.revoked_at = Some(index);
        state.revoked_reason = Some(reason);
        Ok(())
    }
}
