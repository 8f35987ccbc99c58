//! A tenant (one Jira site's installation of the app) and how lifecycle events change it.
//!
//! Pure: [`apply_event`] takes the stored record (if any) and a verified lifecycle payload and
//! says what to store. The rules make every hook idempotent and safe in any order: a repeated
//! event changes nothing, `uninstalled` removes the secret and leaves a tombstone, and
//! `enabled`/`disabled` arriving after an uninstall are ignored. Leaves out storage (KV glue in
//! `tenant_store`) and signature checks (`connect::jwt`).

use serde::{Deserialize, Serialize};

use crate::connect::credentials::{ClientKey, SharedSecret};
use crate::connect::lifecycle::{LifecycleEvent, LifecyclePayload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantState {
    Installed,
    Enabled,
    Disabled,
    Uninstalled,
}

/// The record kept in KV under the tenant's `clientKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRecord {
    pub client_key: ClientKey,
    /// `None` once the tenant has uninstalled: its tokens can no longer verify.
    pub shared_secret: Option<SharedSecret>,
    pub base_url: String,
    pub display_url: Option<String>,
    pub product_type: String,
    pub state: TenantState,
    /// RFC 3339 times.
    pub installed_at: String,
    pub updated_at: String,
}

/// What to do with the stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Store(TenantRecord),
    Unchanged,
}

/// The effect of a verified lifecycle event on the stored record. `now` is RFC 3339.
pub fn apply_event(
    existing: Option<&TenantRecord>,
    payload: &LifecyclePayload,
    now: &str,
) -> Change {
    let live = existing.filter(|r| r.state != TenantState::Uninstalled);
    match payload.event {
        LifecycleEvent::Installed => {
            let record = TenantRecord {
                client_key: payload.client_key.clone(),
                shared_secret: payload.shared_secret.clone(),
                base_url: payload.base_url.to_string(),
                display_url: payload.display_url.as_ref().map(|u| u.to_string()),
                product_type: payload.product_type.clone(),
                // A re-install keeps the tenant enabled or disabled as it was.
                state: live.map_or(TenantState::Installed, |r| r.state),
                installed_at: live.map_or_else(|| now.to_owned(), |r| r.installed_at.clone()),
                updated_at: now.to_owned(),
            };
            if live.is_some_and(|r| same_install(r, &record)) {
                Change::Unchanged
            } else {
                Change::Store(record)
            }
        }
        LifecycleEvent::Uninstalled => match live {
            Some(record) => Change::Store(TenantRecord {
                shared_secret: None,
                state: TenantState::Uninstalled,
                updated_at: now.to_owned(),
                ..record.clone()
            }),
            None => Change::Unchanged,
        },
        LifecycleEvent::Enabled | LifecycleEvent::Disabled => {
            let state = if payload.event == LifecycleEvent::Enabled {
                TenantState::Enabled
            } else {
                TenantState::Disabled
            };
            match live {
                Some(record) if record.state != state => Change::Store(TenantRecord {
                    state,
                    updated_at: now.to_owned(),
                    ..record.clone()
                }),
                _ => Change::Unchanged,
            }
        }
    }
}

/// The same install delivered again: nothing but the timestamp would change.
fn same_install(stored: &TenantRecord, new: &TenantRecord) -> bool {
    TenantRecord {
        updated_at: new.updated_at.clone(),
        ..stored.clone()
    } == *new
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::https_url::HttpsUrl;

    const T0: &str = "2026-12-03T10:00:00Z";
    const T1: &str = "2026-12-03T11:00:00Z";

    fn payload(event: LifecycleEvent, secret: &str) -> LifecyclePayload {
        LifecyclePayload {
            event,
            client_key: ClientKey::parse("client-1").unwrap(),
            shared_secret: (event == LifecycleEvent::Installed)
                .then(|| SharedSecret::parse(secret).unwrap()),
            base_url: HttpsUrl::parse("https://acme.atlassian.net").unwrap(),
            display_url: None,
            product_type: "jira".into(),
        }
    }

    const S1: &str = "secret-one-0123456789abcdefghijklmnop";
    const S2: &str = "secret-two-0123456789abcdefghijklmnop";

    fn stored(change: Change) -> TenantRecord {
        match change {
            Change::Store(r) => r,
            Change::Unchanged => panic!("expected a record to store"),
        }
    }

    #[test]
    fn install_creates_and_reinstall_rotates_the_secret() {
        let first = stored(apply_event(
            None,
            &payload(LifecycleEvent::Installed, S1),
            T0,
        ));
        assert_eq!(first.state, TenantState::Installed);
        assert_eq!(first.installed_at, T0);
        let again = apply_event(Some(&first), &payload(LifecycleEvent::Installed, S1), T1);
        assert_eq!(again, Change::Unchanged, "a repeated install is a no-op");
        let rotated = stored(apply_event(
            Some(&first),
            &payload(LifecycleEvent::Installed, S2),
            T1,
        ));
        assert_eq!(
            rotated.shared_secret,
            Some(SharedSecret::parse(S2).unwrap())
        );
        assert_eq!(rotated.installed_at, T0);
        assert_eq!(rotated.updated_at, T1);
    }

    #[test]
    fn uninstall_removes_the_secret_and_leaves_a_tombstone() {
        let installed = stored(apply_event(
            None,
            &payload(LifecycleEvent::Installed, S1),
            T0,
        ));
        let gone = stored(apply_event(
            Some(&installed),
            &payload(LifecycleEvent::Uninstalled, S1),
            T1,
        ));
        assert_eq!(gone.state, TenantState::Uninstalled);
        assert_eq!(gone.shared_secret, None);
        assert_eq!(
            apply_event(Some(&gone), &payload(LifecycleEvent::Uninstalled, S1), T1),
            Change::Unchanged
        );
    }

    #[test]
    fn enable_and_disable_after_uninstall_are_ignored() {
        let installed = stored(apply_event(
            None,
            &payload(LifecycleEvent::Installed, S1),
            T0,
        ));
        let gone = stored(apply_event(
            Some(&installed),
            &payload(LifecycleEvent::Uninstalled, S1),
            T1,
        ));
        for event in [LifecycleEvent::Enabled, LifecycleEvent::Disabled] {
            assert_eq!(
                apply_event(Some(&gone), &payload(event, S1), T1),
                Change::Unchanged
            );
        }
        // ... and disabled-then-uninstalled ends in the same place.
        let disabled = stored(apply_event(
            Some(&installed),
            &payload(LifecycleEvent::Disabled, S1),
            T1,
        ));
        let gone_too = stored(apply_event(
            Some(&disabled),
            &payload(LifecycleEvent::Uninstalled, S1),
            T1,
        ));
        assert_eq!(gone_too.state, TenantState::Uninstalled);
        assert_eq!(gone_too.shared_secret, None);
    }

    #[test]
    fn enable_toggles_state_once() {
        let installed = stored(apply_event(
            None,
            &payload(LifecycleEvent::Installed, S1),
            T0,
        ));
        let enabled = stored(apply_event(
            Some(&installed),
            &payload(LifecycleEvent::Enabled, S1),
            T1,
        ));
        assert_eq!(enabled.state, TenantState::Enabled);
        assert_eq!(
            apply_event(Some(&enabled), &payload(LifecycleEvent::Enabled, S1), T1),
            Change::Unchanged
        );
        let reinstalled = stored(apply_event(
            Some(&enabled),
            &payload(LifecycleEvent::Installed, S2),
            T1,
        ));
        assert_eq!(reinstalled.state, TenantState::Enabled);
    }

    #[test]
    fn events_for_unknown_tenants_other_than_install_change_nothing() {
        for event in [
            LifecycleEvent::Uninstalled,
            LifecycleEvent::Enabled,
            LifecycleEvent::Disabled,
        ] {
            assert_eq!(
                apply_event(None, &payload(event, S1), T0),
                Change::Unchanged
            );
        }
    }

    #[test]
    fn records_round_trip_through_json_without_losing_the_secret() {
        let r = stored(apply_event(
            None,
            &payload(LifecycleEvent::Installed, S1),
            T0,
        ));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<TenantRecord>(&json).unwrap(), r);
    }
}
