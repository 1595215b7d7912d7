//! Expectations that something must not happen: a request not answered,
//! a connection not made in a given way, a query that must fail with a
//! given error. (A command that must fail is `exec`'s `expect.code`, e.g.
//! `"!= 0"`.)

use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use super::expect::check;
use super::outcome::{Done, Failed, check_words, db_error};
use super::scenario::{SqlExpect, TcpFailure};
use super::steps::Context;
use super::vars::Vars;

impl Context<'_> {
    /// `expect.no_answer_within`: passes when no response head comes for
    /// `quiet`, and waits no longer than that.
    pub(super) async fn no_answer(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
        quiet: Duration,
    ) -> Result<Done, Failed> {
        let answer = self
            .client
            .head_within(method, url, headers, body, quiet)
            .await;
        match answer {
            Ok(None) => {
                let note = format!("no answer within {quiet:?}");
                self.trace.detail.got = Some(note.clone());
                Ok(Done {
                    note: Some(note),
                    ..Done::default()
                })
            }
            Ok(Some((status, after))) => {
                self.trace.detail.got = Some(format!("{status} in {after:.0?}"));
                Err(Failed::Check(format!(
                    "expected no answer within {quiet:?}, got {status} after {after:.0?}"
                )))
            }
            Err((error, after)) => {
                self.trace.detail.got = Some(format!("failed after {after:.0?}: {error}"));
                Err(Failed::Check(format!(
                    "expected no answer within {quiet:?} (a request held), the exchange failed after {after:.0?}: {error}"
                )))
            }
        }
    }
}

/// The checks of expectations that something must fail, as the step that
/// made the attempt hands them its outcome.
impl Context<'_> {
    /// What a `tcp.failure` expects, in words.
    pub(super) fn tcp_failure_words(failure: TcpFailure) -> &'static str {
        match failure {
            TcpFailure::Refused => "a refused connection",
            TcpFailure::Timeout => "no answer to the connection",
        }
    }

    /// `tcp.failure`: the connection must fail in this way.
    pub(super) fn tcp_failure(
        failure: TcpFailure,
        address: &str,
        connected: &Result<std::io::Result<tokio::net::TcpStream>, tokio::time::error::Elapsed>,
        outcome: String,
    ) -> Result<Done, Failed> {
        let held = match (failure, connected) {
            (TcpFailure::Refused, Ok(Err(e))) => e.kind() == std::io::ErrorKind::ConnectionRefused,
            (TcpFailure::Timeout, Err(_)) => true,
            _ => false,
        };
        if held {
            Ok(Done {
                note: Some(outcome),
                ..Done::default()
            })
        } else {
            Err(Failed::Check(format!(
                "expected {} to {address}, got: {outcome}",
                Self::tcp_failure_words(failure)
            )))
        }
    }

    /// `sql.expect.error` (with `sqlstate`, maybe): the query must fail, its
    /// error's message meeting the check.
    pub(super) fn sql_error(
        x: &SqlExpect,
        result: Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>,
        query: &str,
        vars: &Vars,
    ) -> Result<Done, Failed> {
        let wanted = x.error.as_ref().map(check_words).unwrap_or_default();
        let e = match result {
            Ok(_) => {
                return Err(Failed::Check(format!(
                    "expected {query:?} to fail with an error {wanted}, it succeeded"
                )));
            }
            Err(e) => e,
        };
        if let Some(state) = &x.sqlstate {
            let got = e.as_db_error().map(|d| d.code().code());
            if got != Some(state.as_str()) {
                return Err(Failed::Check(format!(
                    "expected SQLSTATE {state}, got {}",
                    db_error(&e)
                )));
            }
        }
        let message = match e.as_db_error() {
            Some(db) => db.message().to_owned(),
            None => e.to_string(),
        };
        if let Some(c) = &x.error {
            check(c, &message, vars).map_err(|exp| {
                Failed::Check(format!("expected an error {exp}, got {}", db_error(&e)))
            })?;
        }
        Ok(Done {
            note: Some(format!("failed as expected: {}", db_error(&e))),
            ..Done::default()
        })
    }
}
