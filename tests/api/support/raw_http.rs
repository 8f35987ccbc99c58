//! Raw HTTP/1.1 over a TCP socket, for requests a well-behaved client refuses to send: bytes that
//! are not a valid URL (literal `..`, control characters, invalid UTF-8 in the path), chunked
//! bodies of any size, and connections the test wants to cut mid-request.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::client::Reply;

/// Sends `head` (request line and headers, without the blank line; `Host` is added unless `head`
/// has one, and
/// `Connection: close` unless `head` has a `Connection` header) and `body` as is, and reads the
/// answer until the server closes the connection or 30 s pass.
/// `None` when the server closed the connection without an HTTP answer.
pub fn exchange(base_url: &str, head: &[u8], body: &[u8]) -> Option<Reply> {
    let authority = base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).expect("connect to the worker");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = head.to_vec();
    let lower = String::from_utf8_lossy(head).to_ascii_lowercase();
    if !lower.contains("\r\nhost:") {
        request.extend_from_slice(format!("\r\nHost: {authority}").as_bytes());
    }
    if !lower.contains("\r\nconnection:") {
        request.extend_from_slice(b"\r\nConnection: close");
    }
    request.extend_from_slice(b"\r\n\r\n");
    request.extend_from_slice(body);
    // The server may answer (and close) before it has read everything: that is not a failure.
    let _ = stream.write_all(&request);
    parse(&read_answer(&mut stream))
}

/// Reads until the answer is complete (its `Content-Length`, the last chunk, or the server
/// closing), so a connection the server keeps open does not hold the test.
fn read_answer(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let body = &raw[split + 4..];
        let length = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        let complete = match length {
            Some(n) => body.len() >= n,
            None if head.contains("transfer-encoding: chunked") => body.ends_with(b"0\r\n\r\n"),
            None => head.starts_with("http/1.1 101") || head.contains(" 204 "),
        };
        if complete {
            return raw;
        }
    }
}

/// A WebSocket upgrade request for `path_and_query`, as raw bytes: a refusal comes back as a
/// plain HTTP answer whose body can be read whole (a WebSocket client may drop it).
pub fn upgrade_head(path_and_query: &str) -> Vec<u8> {
    format!(
        "GET {path_and_query} HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
    )
    .into_bytes()
}

/// A chunked body made of `total` bytes of `fill`, in 16 KiB chunks.
pub fn chunked(fill: u8, total: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(16 * 1024);
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend(std::iter::repeat_n(fill, n));
        out.extend_from_slice(b"\r\n");
        left -= n;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn parse(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: std::collections::HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Some(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = &data[(end + 2).min(data.len())..];
    }
    out
}
