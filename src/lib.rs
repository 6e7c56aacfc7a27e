//! evl — an append-only, content-addressed, signed evidence ledger for readiness gates.
pub mod ingest;
