//! The reconciler's schedule: when the tenant's object next asks Jira about a gate that is still
//! `awaiting`, so that a lost callback never strands a pipeline.
//!
//! Covers the backoff (by default 1, 2, 5, 10 minutes, then every 15 minutes) and the horizon
//! after which it gives up (by default 7 days after the gate was first seen), both configurable
//! (`RECONCILE_SCHEDULE` in seconds, `RECONCILE_HORIZON_HOURS`), and the Jira path it asks.
//! Leaves out the call and applying its answer (the object does both, through the same ordering
//! rule as a callback).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::callback::GateKey;

pub const DEFAULT_SCHEDULE: &str = "60, 120, 300, 600, 900";
pub const DEFAULT_HORIZON_HOURS: u64 = 7 * 24;

/// A path segment keeps only RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Delays in ms before the 1st, 2nd, … check; the last repeats.
    steps_ms: Vec<i64>,
    horizon_ms: i64,
}

impl Schedule {
    pub fn parse(steps: &str, horizon_hours: u64) -> Result<Self, String> {
        let steps_ms = steps
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(i64::from(n) * 1000),
                _ => Err(format!(
                    "{s:?} is not a whole number of seconds (at least 1)"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if steps_ms.is_empty() {
            return Err("needs at least one delay".into());
        }
        if horizon_hours == 0 || horizon_hours > 24 * 365 {
            return Err("the horizon must be 1 hour to 1 year".into());
        }
        Ok(Schedule {
            steps_ms,
            horizon_ms: horizon_hours as i64 * 3_600_000,
        })
    }

    /// When to check next, after `checks_done` checks, or `None` past the horizon.
    pub fn next_check_ms(&self, checks_done: u32, first_seen_ms: i64, now_ms: i64) -> Option<i64> {
        let step = self.steps_ms[(checks_done as usize).min(self.steps_ms.len() - 1)];
        let next = now_ms + step;
        (next <= first_seen_ms + self.horizon_ms).then_some(next)
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::parse(DEFAULT_SCHEDULE, DEFAULT_HORIZON_HOURS)
            .expect("the default schedule parses")
    }
}

/// Jira's gating-status path for a gate, ids percent-encoded as path segments.
pub fn gating_status_path(key: &GateKey) -> String {
    format!(
        "/rest/deployments/0.1/pipelines/{}/environments/{}/deployments/{}/gating-status",
        utf8_percent_encode(key.pipeline.as_str(), SEGMENT),
        utf8_percent_encode(key.environment.as_str(), SEGMENT),
        key.sequence
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gating::callback::GateId;

    #[test]
    fn backs_off_then_repeats_the_last_delay() {
        let s = Schedule::default();
        let at = |checks| s.next_check_ms(checks, 0, 0).unwrap() / 1000;
        assert_eq!(
            [at(0), at(1), at(2), at(3), at(4), at(5), at(50)],
            [60, 120, 300, 600, 900, 900, 900]
        );
    }

    #[test]
    fn stops_at_the_horizon() {
        let s = Schedule::parse("60", 1).unwrap();
        assert!(s.next_check_ms(3, 0, 3_540_000).is_some());
        assert_eq!(s.next_check_ms(3, 0, 3_540_001), None);
    }

    #[test]
    fn schedules_are_validated() {
        assert!(Schedule::parse("", 1).is_err());
        assert!(Schedule::parse("0", 1).is_err());
        assert!(Schedule::parse("1, x", 1).is_err());
        assert!(Schedule::parse("1", 0).is_err());
        assert!(Schedule::parse(" 1 ,2 ", 1).is_ok());
    }

    #[test]
    fn path_segments_are_encoded() {
        let key = GateKey {
            pipeline: GateId::parse("team/api svc").unwrap(),
            environment: GateId::parse("prod?x").unwrap(),
            sequence: 9,
        };
        assert_eq!(
            gating_status_path(&key),
            "/rest/deployments/0.1/pipelines/team%2Fapi%20svc/environments/prod%3Fx/deployments/9/gating-status"
        );
    }
}
