//! Networking shared by evl's servers and clients: one serving loop for `evl serve` and
//! `evl witness serve` (TLS, slow-client limits, graceful shutdown), and the extra CA bundle
//! every HTTPS client trusts (docs/SERVER.md §"TLS").

pub mod ca;
pub mod listen;
