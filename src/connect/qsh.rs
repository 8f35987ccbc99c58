//! The Connect query string hash (`qsh`): the claim that binds a JWT to one request.
//!
//! Covers the canonical request exactly as Atlassian's libraries build it (connect-protocol.md
//! section 4): upper-case method; the path relative to a base path, `&` escaped as `%26`, one
//! trailing `/` dropped; the query with `jwt` removed, keys and values decoded (`+` is a space),
//! grouped by key, keys and each key's values sorted by byte value, RFC 3986-encoded, values joined
//! with `,`. Leaves out the body, which is never hashed, and deciding which token kinds an endpoint
//! accepts (see `jwt`).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// Everything except RFC 3986's unreserved `A-Z a-z 0-9 - . _ ~` becomes `%XX`.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A request as the hash sees it: method, raw path, raw query (without `?`), and the base path
/// the path is relative to (empty, or `/jira` for a site or app living under a path).
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub base_path: &'a str,
}

impl<'a> RequestParts<'a> {
    /// Splits `path_and_query` at the first `?`.
    pub fn new(method: &'a str, path_and_query: &'a str, base_path: &'a str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        RequestParts {
            method,
            path,
            query,
            base_path,
        }
    }
}

/// `METHOD&path&query`, the string whose SHA-256 is the qsh.
pub fn canonical_request(req: &RequestParts<'_>) -> String {
    format!(
        "{}&{}&{}",
        req.method.to_ascii_uppercase(),
        canonical_path(req.path, req.base_path),
        canonical_query(req.query)
    )
}

/// Lower-case hex SHA-256 of the canonical request.
pub fn qsh(req: &RequestParts<'_>) -> String {
    hex::encode(Sha256::digest(canonical_request(req).as_bytes()))
}

fn canonical_path(path: &str, base_path: &str) -> String {
    let base_path = base_path.trim_end_matches('/');
    let relative = match path.strip_prefix(base_path) {
        Some(rest) if !base_path.is_empty() && (rest.is_empty() || rest.starts_with('/')) => rest,
        _ => path,
    };
    let mut out = relative.replace('&', "%26");
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut params: Vec<_> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key != "jwt")
        .collect();
    // Byte order of keys, then of values within a key: the grouping falls out of the sort.
    params.sort_unstable();
    let mut out = String::with_capacity(query.len() + 16);
    let mut previous_key: Option<&str> = None;
    for (key, value) in &params {
        if previous_key == Some(key.as_ref()) {
            out.push(',');
        } else {
            if previous_key.is_some() {
                out.push('&');
            }
            out.extend(utf8_percent_encode(key, RFC3986));
            out.push('=');
            previous_key = Some(key);
        }
        out.extend(utf8_percent_encode(value, RFC3986));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(method: &str, url: &str) -> String {
        canonical_request(&RequestParts::new(method, url, ""))
    }

    fn hash(method: &str, url: &str) -> String {
        qsh(&RequestParts::new(method, url, ""))
    }

    /// Every vector of connect-protocol.md section 4.
    #[test]
    fn documented_vectors() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("POST", "/callback", "POST&/callback&",
             Some("68eb4171c15669ca90cbbb154a5c0ee54f31b20995473773d0bf3f464198a883")),
            ("GET", "/path", "GET&/path&",
             Some("799be84a7fa35570087163c0cd9af3abff7ac05c2c12ba0bb1d7eebc984b3ac2")),
            ("GET", "/", "GET&/&",
             Some("c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239")),
            ("GET", "", "GET&/&",
             Some("c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239")),
            ("GET", "/test?param=value", "GET&/test&param=value",
             Some("be16910858a41fd19ea5c1b4e9decca9a784d1024cb00b2158defe2f29dc86dd")),
            ("GET", "/test?ids=-1&ids=1&ids=10&ids=2&ids=20", "GET&/test&ids=-1,1,10,2,20",
             Some("a646c48741faaeb649f9ca7888ae029ead432e3806f56c4a57b80b3e2ac628a9")),
            ("GET", "/endsWithDelimiter/?a=b", "GET&/endsWithDelimiter&a=b",
             Some("8f77c6a0e6bf25041121ee44480d3c97ae9cca4b7a007ea6e1d648d9a26e5d1d")),
            ("GET", "/test?param=some+spaces+in+this+parameter",
             "GET&/test&param=some%20spaces%20in%20this%20parameter",
             Some("ef4097d05395eaf1a133956f140116a9c411afad768d4f06daac9e305764265d")),
            ("GET",
             "/path/to/service?zee_last=param&repeated=parameter 1&first=param&repeated=parameter 2&repeated=Parameter 2",
             "GET&/path/to/service&first=param&repeated=Parameter%202,parameter%201,parameter%202&zee_last=param",
             None),
            ("GET", "/hello-world?a&b=foo&c", "GET&/hello-world&a=&b=foo&c=", None),
            ("POST", "/rest/deployments/0.1/bulk", "POST&/rest/deployments/0.1/bulk&",
             Some("e50a1fc975925dfc3652c2ea120c1d37f5581e16d5a167a5adbeda3bda7ab589")),
        ];
        for (method, url, expected_canonical, expected_qsh) in cases {
            assert_eq!(
                canonical(method, url),
                *expected_canonical,
                "{method} {url}"
            );
            if let Some(q) = expected_qsh {
                assert_eq!(hash(method, url), *q, "{method} {url}");
            }
        }
    }

    #[test]
    fn path_is_relative_to_the_base_path_and_ampersands_are_escaped() {
        let req = RequestParts::new("post", "/jira/rest/api/2/project/jira&a=b&c=d?x=y", "/jira");
        assert_eq!(
            canonical_request(&req),
            "POST&/rest/api/2/project/jira%26a=b%26c=d&x=y"
        );
        // A base path only strips at a segment boundary, and its trailing slash is ignored.
        let req = RequestParts::new("GET", "/jiraffe/x", "/jira/");
        assert_eq!(canonical_request(&req), "GET&/jiraffe/x&");
        let req = RequestParts::new("GET", "/jira", "/jira");
        assert_eq!(canonical_request(&req), "GET&/&");
    }

    #[test]
    fn jwt_parameter_is_dropped() {
        assert_eq!(canonical("GET", "/p?jwt=abc.def.ghi&b=1"), "GET&/p&b=1");
        assert_eq!(canonical("GET", "/p?jwt=x"), "GET&/p&");
        // Only the exact key: similar keys are hashed.
        assert_eq!(canonical("GET", "/p?JWT=1&jwt2=2"), "GET&/p&JWT=1&jwt2=2");
    }

    #[test]
    fn plus_space_and_encoded_plus_are_distinct() {
        assert_eq!(canonical("GET", "/p?a=x+y"), "GET&/p&a=x%20y");
        assert_eq!(canonical("GET", "/p?a=x%20y"), "GET&/p&a=x%20y");
        assert_eq!(canonical("GET", "/p?a=x%2By"), "GET&/p&a=x%2By");
        // Double encoding decodes once: %2520 is the three characters "%20".
        assert_eq!(canonical("GET", "/p?a=%2520"), "GET&/p&a=%2520");
    }

    #[test]
    fn rfc3986_reserved_and_unreserved_characters() {
        assert_eq!(canonical("GET", "/p?a=*"), "GET&/p&a=%2A");
        assert_eq!(canonical("GET", "/p?a=~-._"), "GET&/p&a=~-._");
        assert_eq!(canonical("GET", "/p?a=!'()"), "GET&/p&a=%21%27%28%29");
        assert_eq!(canonical("GET", "/p?a=%2C"), "GET&/p&a=%2C");
        assert_eq!(canonical("GET", "/p?a=b=c"), "GET&/p&a=b%3Dc");
    }

    #[test]
    fn unicode_is_utf8_percent_encoded() {
        assert_eq!(
            canonical("GET", "/p?q=%C3%A9t%C3%A9"),
            "GET&/p&q=%C3%A9t%C3%A9"
        );
        assert_eq!(canonical("GET", "/p?q=été"), "GET&/p&q=%C3%A9t%C3%A9");
        assert_eq!(canonical("GET", "/p?%E2%9C%93=1"), "GET&/p&%E2%9C%93=1");
    }

    #[test]
    fn empty_values_repeated_keys_and_case() {
        assert_eq!(canonical("GET", "/p?a=&a=&b"), "GET&/p&a=,&b=");
        assert_eq!(
            canonical("GET", "/p?b=2&B=1&a=3&A=4"),
            "GET&/p&A=4&B=1&a=3&b=2"
        );
        assert_eq!(canonical("GET", "/p?a=2&a=10&a=1"), "GET&/p&a=1,10,2");
        assert_eq!(canonical("GET", "/p?&&a=1&&"), "GET&/p&a=1");
    }

    #[test]
    fn values_sort_by_decoded_bytes() {
        // "%41" decodes to "A", which sorts before "B" although "%" > "B" in the raw form.
        assert_eq!(canonical("GET", "/p?k=B&k=%41"), "GET&/p&k=A,B");
    }

    #[test]
    fn malformed_escapes_are_kept_literally() {
        assert_eq!(canonical("GET", "/p?a=%zz&b=%"), "GET&/p&a=%25zz&b=%25");
    }

    use proptest::prelude::*;

    proptest! {
        /// Any order of the same parameters gives the same canonical query.
        #[test]
        fn canonical_query_ignores_parameter_order(
            params in prop::collection::vec(("[a-cA-C%+*~ é✓=]{0,4}", "[a-c%+*~ é✓,=]{0,4}"), 0..12)
                .prop_flat_map(|p| (Just(p.clone()), Just(p).prop_shuffle())),
        ) {
            let encode = |p: &Vec<(String, String)>| -> String {
                url::form_urlencoded::Serializer::new(String::new()).extend_pairs(p).finish()
            };
            let (a, b) = params;
            prop_assert_eq!(canonical_query(&encode(&a)), canonical_query(&encode(&b)));
        }
    }
}
