//! Atlassian Connect's security protocol, with no dependency on the Workers runtime.
//!
//! `qsh` hashes requests, `jwt` verifies inbound and signs outbound tokens, `lifecycle` parses
//! the install payloads, `credentials` holds the tenant identifiers and secrets they carry.
//! Time and keys are always parameters; nothing here reads a clock or does I/O.

pub mod credentials;
pub mod jwt;
pub mod lifecycle;
pub mod qsh;
