//! Absolute base URLs the app trusts: its own `BASE_URL`, the install-keys server, a tenant's site.
//!
//! Covers the one rule they share: https, or plain http only on a loopback host (so local runs and
//! tests work without opening a path to arbitrary http hosts). Leaves out host allow-lists, which
//! belong to the caller (`config::HostPattern`).

use std::fmt;
use std::net::Ipv4Addr;

/// An absolute `https://` (or loopback `http://`) URL with no query, fragment or credentials,
/// kept without a trailing slash so that `base + "/path"` is always well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl {
    text: String,
    /// Where the path starts in `text` (`text.len()` when the URL has no path).
    path_start: usize,
}

impl HttpsUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|_| format!("{raw:?} is not an absolute URL"))?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("{raw:?} has no host"))?
            .to_owned();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&host) => {}
            "http" => return Err(format!("{raw:?} must use https (http only on loopback)")),
            other => return Err(format!("{raw:?} has scheme {other}; https is required")),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{raw:?} must not have a query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{raw:?} must not carry credentials"));
        }
        let origin = url.origin().ascii_serialization();
        let path = url.path().trim_end_matches('/');
        Ok(HttpsUrl {
            path_start: origin.len(),
            text: format!("{origin}{path}"),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> &str {
        &self.text[..self.path_start]
    }

    /// The path prefix, empty or starting with `/` and without a trailing slash.
    pub fn path(&self) -> &str {
        &self.text[self.path_start..]
    }

    /// `self` followed by `path`, which must start with `/`.
    pub fn join(&self, path: &str) -> String {
        debug_assert!(path.starts_with('/'));
        format!("{}{}", self.text, path)
    }
}

impl fmt::Display for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `localhost`, `127.0.0.0/8` or `::1` (with or without brackets).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_origin_and_path_apart() {
        let u = HttpsUrl::parse("https://Gates.Example.com:8443/app/").unwrap();
        assert_eq!(u.as_str(), "https://gates.example.com:8443/app");
        assert_eq!(u.origin(), "https://gates.example.com:8443");
        assert_eq!(u.path(), "/app");
        assert_eq!(
            u.join("/callback"),
            "https://gates.example.com:8443/app/callback"
        );
    }

    #[test]
    fn root_url_has_an_empty_path() {
        let u = HttpsUrl::parse("https://acme.atlassian.net").unwrap();
        assert_eq!(u.path(), "");
        assert_eq!(u.join("/rest"), "https://acme.atlassian.net/rest");
    }

    #[test]
    fn refuses_http_off_loopback_and_other_schemes() {
        assert!(HttpsUrl::parse("http://example.com").is_err());
        assert!(HttpsUrl::parse("http://127.0.0.1.example.com").is_err());
        assert!(HttpsUrl::parse("javascript:alert(1)").is_err());
        assert!(HttpsUrl::parse("https://user:pw@example.com").is_err());
        assert!(HttpsUrl::parse("https://example.com/#frag").is_err());
        assert!(HttpsUrl::parse("").is_err());
    }

    #[test]
    fn accepts_every_loopback_form() {
        for raw in [
            "http://localhost:1",
            "http://127.0.0.1",
            "http://127.9.9.9:80",
            "http://[::1]:5",
        ] {
            assert!(HttpsUrl::parse(raw).is_ok(), "{raw}");
        }
    }
}
