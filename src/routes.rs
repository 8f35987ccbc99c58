//! The worker's routing table: which paths exist and which methods each accepts.
//!
//! Pure: maps a method and a path (already relative to the app's base URL) to a [`Route`], or to
//! the 404/405 error a client should see. The runtime glue dispatches each route to its handler.

use crate::connect::lifecycle::LifecycleEvent;
use crate::descriptor::{DISABLED_PATH, ENABLED_PATH, INSTALLED_PATH, UNINSTALLED_PATH};
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Descriptor,
    Health,
    Lifecycle(LifecycleEvent),
    Connection,
}

/// Every route with the methods it serves. `HEAD` is served wherever `GET` is.
const ROUTES: &[(&str, &[&str], Route)] = &[
    (
        "/atlassian-connect.json",
        &["GET", "HEAD"],
        Route::Descriptor,
    ),
    ("/healthz", &["GET", "HEAD"], Route::Health),
    (
        INSTALLED_PATH,
        &["POST"],
        Route::Lifecycle(LifecycleEvent::Installed),
    ),
    (
        UNINSTALLED_PATH,
        &["POST"],
        Route::Lifecycle(LifecycleEvent::Uninstalled),
    ),
    (
        ENABLED_PATH,
        &["POST"],
        Route::Lifecycle(LifecycleEvent::Enabled),
    ),
    (
        DISABLED_PATH,
        &["POST"],
        Route::Lifecycle(LifecycleEvent::Disabled),
    ),
    ("/api/v1/connection", &["GET"], Route::Connection),
];

pub fn resolve(method: &str, path: &str) -> Result<Route, AppError> {
    let (_, methods, route) = ROUTES
        .iter()
        .find(|(p, _, _)| *p == path)
        .ok_or(AppError::NotFound)?;
    if methods.contains(&method) {
        Ok(*route)
    } else {
        Err(AppError::MethodNotAllowed {
            allow: methods.to_vec(),
        })
    }
}

/// Strips the path of the app's base URL (`/app` for `https://host/app`) from a request path.
/// A request outside the base path has no route (`None`).
pub fn relative_path<'a>(base_path: &str, request_path: &'a str) -> Option<&'a str> {
    if base_path.is_empty() {
        return Some(request_path);
    }
    match request_path.strip_prefix(base_path)? {
        "" => Some("/"),
        rest if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_resolve() {
        assert_eq!(
            resolve("GET", "/atlassian-connect.json").unwrap(),
            Route::Descriptor
        );
        assert_eq!(resolve("HEAD", "/healthz").unwrap(), Route::Health);
    }

    #[test]
    fn unknown_paths_are_not_found() {
        assert!(matches!(resolve("GET", "/nope"), Err(AppError::NotFound)));
        assert!(matches!(
            resolve("GET", "/healthz/"),
            Err(AppError::NotFound)
        ));
    }

    #[test]
    fn wrong_method_lists_the_allowed_ones() {
        match resolve("POST", "/healthz") {
            Err(AppError::MethodNotAllowed { allow }) => assert_eq!(allow, ["GET", "HEAD"]),
            other => panic!("expected 405, got {other:?}"),
        }
    }

    #[test]
    fn base_path_is_stripped_only_at_a_segment_boundary() {
        assert_eq!(relative_path("", "/healthz"), Some("/healthz"));
        assert_eq!(relative_path("/app", "/app/healthz"), Some("/healthz"));
        assert_eq!(relative_path("/app", "/app"), Some("/"));
        assert_eq!(relative_path("/app", "/apple/healthz"), None);
        assert_eq!(relative_path("/app", "/healthz"), None);
    }
}
