//! Domain-separation strings, in one place (docs/FORMAT.md §"Domain separation").
//!
//! Every hash or signature evl computes over structured bytes is prefixed with one of these
//! constants so that bytes meant for one purpose can never be replayed as another.

/// Prefix of the message an entry signature covers: `ENTRY_SIGNATURE || entry_id`.
pub const ENTRY_SIGNATURE: &[u8] = b"evl/entry-signature/v1\n";
/// Prefix of the BLAKE3 input that derives a key id from a 32-byte Ed25519 public key.
pub const KEY_ID: &[u8] = b"evl/key-id/v1\n";
/// Prefix of the BLAKE3 input that derives a basis digest from the sorted basis entry ids.
pub const BASIS: &[u8] = b"evl/basis/v1\n";
/// First bytes of every bundle file.
pub const BUNDLE_MAGIC: &[u8] = b"evl-bundle/v1\n";
/// Prefix of the BLAKE3 input of a store commit record's check hash (docs/FORMAT.md
/// §"Store layout").
pub const STORE_COMMIT: &[u8] = b"evl/store-commit/v2\n";
/// First bytes of every submission file (an entry signed away from the ledger,
/// docs/FORMAT.md §"Submission files").
pub const SUBMISSION_MAGIC: &[u8] = b"evl-submission/v1\n";
