//! Whether an update replaces a gate's stored state.
//!
//! Jira delivers callbacks at least once and up to ~30 minutes late, so updates arrive duplicated
//! and out of order. The rule, applied to every update whatever its source:
//! - no stored state, or a newer `updatedTimestamp` → apply;
//! - an older `updatedTimestamp` → stale (acknowledged, not applied);
//! - the same timestamp and the same status and details → duplicate (acknowledged, no event);
//! - the same timestamp, different content → a fixed precedence decides, so that any delivery
//!   order ends in the same state: the status ranked higher wins (`prevented` > `invalid` >
//!   `allowed` > `awaiting`: a decision beats waiting, and the safe decision beats the unsafe
//!   one); with equal status, the details whose JSON text sorts last win.

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use super::callback::GatingStatus;

/// What the stored state holds for the comparison.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    pub status: GatingStatus,
    pub updated_at: DateTime<FixedOffset>,
    pub details: &'a [Map<String, Value>],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Apply,
    Stale,
    Duplicate,
}

pub fn decide(current: Option<Current<'_>>, update: Current<'_>) -> Decision {
    let Some(current) = current else {
        return Decision::Apply;
    };
    // DateTime<FixedOffset> compares instants, so offsets do not matter.
    if update.updated_at > current.updated_at {
        return Decision::Apply;
    }
    if update.updated_at < current.updated_at {
        return Decision::Stale;
    }
    if update.status == current.status && update.details == current.details {
        return Decision::Duplicate;
    }
    let ordering = rank(update.status)
        .cmp(&rank(current.status))
        .then_with(|| details_text(update.details).cmp(&details_text(current.details)));
    if ordering.is_gt() {
        Decision::Apply
    } else {
        Decision::Stale
    }
}

fn rank(status: GatingStatus) -> u8 {
    match status {
        GatingStatus::Awaiting => 0,
        GatingStatus::Allowed => 1,
        GatingStatus::Invalid => 2,
        GatingStatus::Prevented => 3,
    }
}

fn details_text(details: &[Map<String, Value>]) -> String {
    serde_json::to_string(details).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(ts: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(ts).unwrap()
    }

    fn state<'a>(status: GatingStatus, ts: &str, details: &'a [Map<String, Value>]) -> Current<'a> {
        Current {
            status,
            updated_at: at(ts),
            details,
        }
    }

    const T1: &str = "2026-12-03T10:00:00.000+00:00";
    const T2: &str = "2026-12-03T10:00:00.001+00:00";
    use GatingStatus::*;

    #[test]
    fn first_and_newer_updates_apply_older_ones_are_stale() {
        assert_eq!(decide(None, state(Awaiting, T1, &[])), Decision::Apply);
        assert_eq!(
            decide(Some(state(Awaiting, T1, &[])), state(Allowed, T2, &[])),
            Decision::Apply
        );
        assert_eq!(
            decide(Some(state(Allowed, T2, &[])), state(Awaiting, T1, &[])),
            Decision::Stale
        );
        // A newer update applies even when it goes back to awaiting (Jira re-opened the gate).
        assert_eq!(
            decide(Some(state(Allowed, T1, &[])), state(Awaiting, T2, &[])),
            Decision::Apply
        );
    }

    #[test]
    fn offsets_compare_as_instants() {
        let same_instant = "2026-12-03T12:00:00.001+02:00";
        assert_eq!(
            decide(
                Some(state(Allowed, T2, &[])),
                state(Allowed, same_instant, &[])
            ),
            Decision::Duplicate
        );
    }

    #[test]
    fn identical_content_is_a_duplicate() {
        let d = vec![json!({"type": "issue", "issueKey": "A-1"})
            .as_object()
            .unwrap()
            .clone()];
        assert_eq!(
            decide(Some(state(Allowed, T1, &d)), state(Allowed, T1, &d)),
            Decision::Duplicate
        );
    }

    #[test]
    fn ties_end_in_the_same_state_whatever_the_delivery_order() {
        let d1 = [json!({"type": "issue", "issueKey": "A-1"})
            .as_object()
            .unwrap()
            .clone()];
        let d2 = [json!({"type": "issue", "issueKey": "A-2"})
            .as_object()
            .unwrap()
            .clone()];
        let candidates = [
            (Awaiting, &d1[..]),
            (Allowed, &d1[..]),
            (Allowed, &d2[..]),
            (Invalid, &[][..]),
            (Prevented, &d2[..]),
        ];
        // Fold every permutation order of pairs: the winner never depends on who came first.
        for a in &candidates {
            for b in &candidates {
                let winner =
                    |first: &(GatingStatus, &[Map<String, Value>]),
                     second: &(GatingStatus, &[Map<String, Value>])| {
                        match decide(
                            Some(state(first.0, T1, first.1)),
                            state(second.0, T1, second.1),
                        ) {
                            Decision::Apply => (second.0, details_text(second.1)),
                            _ => (first.0, details_text(first.1)),
                        }
                    };
                assert_eq!(winner(a, b), winner(b, a), "{a:?} vs {b:?}");
            }
        }
        assert_eq!(
            decide(Some(state(Allowed, T1, &[])), state(Prevented, T1, &[])),
            Decision::Apply
        );
        assert_eq!(
            decide(Some(state(Prevented, T1, &[])), state(Allowed, T1, &[])),
            Decision::Stale
        );
        assert_eq!(
            decide(Some(state(Awaiting, T1, &[])), state(Allowed, T1, &[])),
            Decision::Apply
        );
    }
}
