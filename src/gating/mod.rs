//! Deployment gating domain: the callback Jira sends and the rule that orders updates to a gate.
//!
//! Pure (no `worker` import): `callback` turns the wire payload into typed values, `ordering`
//! decides whether an update replaces the stored state. Storage in the tenant's Durable Object
//! and the HTTP route come with the gate-state issue.

pub mod callback;
pub mod commands;
pub mod ordering;
pub mod reconcile;
