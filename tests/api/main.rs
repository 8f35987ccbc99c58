//! Integration tests: the built worker in real `workerd`, with loopback fakes of Jira and of
//! Atlassian's install-keys server. One binary so the harness and the shared worker are built once.

mod support;

mod abuse;
mod browser;
mod configuration;
mod deployments;
mod descriptor;
mod faults;
mod gates;
mod harness;
mod jira_pages;
mod lifecycle;
mod recipes;
mod reconciler;
mod request_auth;
mod routing;
mod stream;
mod waiting;
