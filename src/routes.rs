//! The worker's routing table: which paths exist and which methods each accepts.
//!
//! Pure: maps a method and a path (already relative to the app's base URL) to a [`Route`], or to
//! the 404/405 error a client should see. The runtime glue dispatches each route to its handler.

use crate::connect::lifecycle::LifecycleEvent;
use crate::descriptor::{
    ADMIN_PAGE_PATH, CALLBACK_PATH, DISABLED_PATH, ENABLED_PATH, GATES_PAGE_PATH, INSTALLED_PATH,
    UNINSTALLED_PATH,
};
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Descriptor,
    Health,
    Lifecycle(LifecycleEvent),
    Connection,
    Callback,
    Gates,
    /// `{pipelineId}/{environmentId}/{deploymentSequenceNumber}`
    Gate,
    Events,
    Tokens,
    /// `{id}`
    Token,
    Deployments,
    StreamTickets,
    Stream,
    Dashboard,
    /// The general page inside Jira ("Deployment gates").
    JiraGatesPage,
    /// The admin page inside Jira (API tokens).
    JiraAdminPage,
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
    (CALLBACK_PATH, &["POST"], Route::Callback),
    ("/api/v1/gates", &["GET"], Route::Gates),
    ("/api/v1/gates/{}/{}/{}", &["GET"], Route::Gate),
    ("/api/v1/events", &["GET"], Route::Events),
    ("/api/v1/tokens", &["GET", "POST"], Route::Tokens),
    ("/api/v1/tokens/{}", &["DELETE"], Route::Token),
    ("/api/v1/deployments", &["POST"], Route::Deployments),
    ("/api/v1/stream-tickets", &["POST"], Route::StreamTickets),
    ("/api/v1/stream", &["GET"], Route::Stream),
    ("/dashboard", &["GET", "HEAD"], Route::Dashboard),
    (GATES_PAGE_PATH, &["GET"], Route::JiraGatesPage),
    (ADMIN_PAGE_PATH, &["GET"], Route::JiraAdminPage),
];

/// The route for `path` and its `{}` segments, still percent-encoded as sent.
pub fn resolve<'p>(method: &str, path: &'p str) -> Result<(Route, Vec<&'p str>), AppError> {
    let (params, methods, route) = ROUTES
        .iter()
        .find_map(|(pattern, methods, route)| {
            match_pattern(pattern, path).map(|params| (params, methods, route))
        })
        .ok_or(AppError::NotFound)?;
    if methods.contains(&method) {
        Ok((*route, params))
    } else {
        Err(AppError::MethodNotAllowed {
            allow: methods.to_vec(),
        })
    }
}

/// Matches segment by segment; `{}` takes one non-empty segment.
fn match_pattern<'p>(pattern: &str, path: &'p str) -> Option<Vec<&'p str>> {
    let mut params = Vec::new();
    let mut segments = path.split('/');
    for expected in pattern.split('/') {
        let actual = segments.next()?;
        if expected == "{}" && !actual.is_empty() {
            params.push(actual);
        } else if expected != actual {
            return None;
        }
    }
    segments.next().is_none().then_some(params)
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
            resolve("GET", "/atlassian-connect.json").unwrap().0,
            Route::Descriptor
        );
        assert_eq!(resolve("HEAD", "/healthz").unwrap().0, Route::Health);
        assert_eq!(
            resolve("GET", "/api/v1/gates/p%2F1/prod/7").unwrap(),
            (Route::Gate, vec!["p%2F1", "prod", "7"])
        );
        assert_eq!(
            resolve("DELETE", "/api/v1/tokens/tok_1").unwrap(),
            (Route::Token, vec!["tok_1"])
        );
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
