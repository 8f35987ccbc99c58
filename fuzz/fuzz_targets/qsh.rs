//! The qsh canonicaliser on arbitrary requests.
//!
//! Input: UTF-8 (lossily) text `method \n path?query \n base path`; missing lines are empty.
//! Checks, besides "never panics", what connect-protocol.md §4 makes true of any request: the
//! canonical query equals an independent implementation of the spec's words, ignores the order of
//! `&`-separated parameters and any `jwt` parameter, holds nothing but RFC 3986 unreserved
//! characters, `%XX`, and its `=` `,` `&` separators; the path never holds a raw `&`; the method's
//! case does not matter; a base path strips at a segment boundary; the qsh is the SHA-256 of it all.
#![no_main]

use std::collections::BTreeMap;

use deployment_gating::connect::qsh::{canonical_request, qsh, RequestParts};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let method = lines.next().unwrap_or_default();
    let path_and_query = lines.next().unwrap_or_default();
    let base_path = lines.next().unwrap_or_default();

    let req = RequestParts::new(method, path_and_query, base_path);
    let canonical = canonical_request(&req);

    // Deterministic, and the qsh is the lower-case hex SHA-256 of the canonical request.
    assert_eq!(canonical, canonical_request(&req));
    let hash = qsh(&req);
    assert_eq!(hash, hex(&Sha256::digest(canonical.as_bytes())));
    assert!(hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) && hash.len() == 64);

    // METHOD&path&query: the method upper-cased; the path has no raw `&`, so the first `&` after
    // the method ends it.
    let method_upper = method.to_ascii_uppercase();
    let rest = canonical
        .strip_prefix(&format!("{method_upper}&"))
        .expect("canonical request starts with the upper-cased method");
    let (path, query) = rest.split_once('&').expect("path and query are separated");
    assert!(path.starts_with('/'), "{path:?}");
    assert!(
        path == "/" || !path.ends_with('/') || req.path.ends_with("//"),
        "{path:?}"
    );

    // The method's case does not matter.
    let lower = method.to_ascii_lowercase();
    assert_eq!(
        canonical_request(&RequestParts {
            method: &lower,
            ..req
        }),
        canonical
    );

    // The query: an independent reading of the spec, and only safe characters.
    assert_eq!(query, reference_query(req.query), "query {:?}", req.query);
    assert_well_encoded(query);

    // Order of parameters and a `jwt` parameter anywhere do not change it.
    let mut pieces: Vec<&str> = req.query.split('&').collect();
    shuffle(&mut pieces, data);
    let jwt_at = data
        .first()
        .map_or(0, |&b| usize::from(b) % (pieces.len() + 1));
    pieces.insert(jwt_at, "jwt=a.b.c");
    let permuted = pieces.join("&");
    assert_eq!(
        canonical_request(&RequestParts {
            query: &permuted,
            ..req
        }),
        canonical,
        "permuted {permuted:?}"
    );

    // A base path is removed when the path starts with it at a segment boundary.
    let base = base_path.trim_end_matches('/');
    if !base.is_empty() {
        let relative = if req.path.is_empty() || req.path.starts_with('/') {
            req.path.to_owned()
        } else {
            format!("/{}", req.path)
        };
        let full = format!("{base}{relative}");
        let with_base = RequestParts {
            path: &full,
            base_path,
            ..req
        };
        let without_base = RequestParts {
            path: &relative,
            base_path: "",
            ..req
        };
        assert_eq!(
            canonical_request(&with_base),
            canonical_request(&without_base)
        );
    }
});

/// §4 read literally: drop empty pieces; split each at its first `=`; decode (`+` is a space,
/// `%XX` a byte, a malformed escape stays literal, as the project's tests pin); drop `jwt`; group
/// by key; sort keys and each key's values by byte value; RFC 3986-encode; join.
fn reference_query(query: &str) -> String {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        let key = decode(key);
        if key != "jwt" {
            groups.entry(key).or_default().push(decode(value));
        }
    }
    groups
        .into_iter()
        .map(|(key, mut values)| {
            values.sort();
            let values: Vec<String> = values.iter().map(|v| encode(v)).collect();
            format!("{}={}", encode(&key), values.join(","))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex_digit(bytes.get(i + 1)), hex_digit(bytes.get(i + 2))) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(b: Option<&u8>) -> Option<u8> {
    (*b? as char).to_digit(16).map(|d| d as u8)
}

fn encode(decoded: &str) -> String {
    decoded
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every pair is `key=value[,value]*`, each part unreserved characters and upper-case `%XX`:
/// no raw `&`, `=` or `,` inside a key or value.
fn assert_well_encoded(query: &str) {
    if query.is_empty() {
        return;
    }
    for pair in query.split('&') {
        let (key, values) = pair.split_once('=').expect("every pair has an =");
        for part in std::iter::once(key).chain(values.split(',')) {
            let bytes = part.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => i += 1,
                    b'%' => {
                        let escape = bytes.get(i + 1..i + 3).unwrap_or_default();
                        assert!(
                            escape.len() == 2
                                && escape
                                    .iter()
                                    .all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')),
                            "{query:?}"
                        );
                        i += 3;
                    }
                    other => panic!("raw {:?} in {query:?}", other as char),
                }
            }
        }
    }
}

/// Fisher-Yates driven by a small LCG seeded from the input, so a crash replays exactly.
fn shuffle<T>(items: &mut [T], data: &[u8]) {
    let mut state = data.iter().fold(0x9e37_79b9_7f4a_7c15_u64, |s, &b| {
        s.rotate_left(5) ^ u64::from(b)
    });
    for i in (1..items.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        items.swap(i, (state >> 33) as usize % (i + 1));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
