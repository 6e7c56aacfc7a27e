//! evl — an append-only, content-addressed, signed evidence ledger for readiness gates.
//!
//! The data path reads top-down: file → artifact → [`entry`] → [`store`] / [`merkle`] log →
//! packet → evaluate → disposition → replay. Lower layers never import higher ones.

pub mod attestation;
pub mod basis;
pub mod batch_verify;
pub mod bundle;
pub mod checkpoint;
pub mod cli;
pub mod codec;
pub mod deadlines;
pub mod digest;
pub mod disposition;
pub mod domain;
pub mod entry;
pub mod error;
pub mod evaluate;
pub mod evidence;
pub mod facts;
pub mod gate;
pub mod gate_test;
pub mod ingest;
pub mod keys;
pub mod lineage;
pub mod merkle;
pub mod net;
pub mod page;
pub mod publish;
pub mod registry;
pub mod replay;
pub mod store;
pub mod submission;
pub mod timestamp;
pub mod tlog_proof;
pub mod trust;
pub mod verify;
pub mod witness;

pub use digest::{Digest, EntryId};
pub use error::{Error, Result};
