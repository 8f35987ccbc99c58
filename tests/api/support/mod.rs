//! Test harness: the real worker in `workerd` (through `wrangler dev --local`) and loopback fakes
//! of the outside world (a Jira site and Atlassian's install-keys server).
//!
//! Not every test file uses every helper, so unused ones are not warnings here.
#![allow(dead_code)]

pub mod chromium;
pub mod client;
pub mod fake_jira;
pub mod fake_keys;
pub mod fixtures;
pub mod jira_client;
pub mod loopback;
pub mod raw_http;
pub mod worker;
pub mod ws;

pub use client::Reply;
pub use worker::TestWorker;
