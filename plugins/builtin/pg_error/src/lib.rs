//! `pg_error`: fails the client's queries whose SQL matches `sql_regex`
//! with an error of a given SQLSTATE (e.g. 40001 serialization failure,
//! 53300 too many connections, 57014 query canceled), and keeps the session
//! usable, as Postgres does. Attach it `upstream`.
//!
//! The server raises the error itself: the matching statement is replaced
//! by a `DO` block that raises it (for the extended protocol, the rest of
//! the batch is dropped and the block goes in place of its Sync). So the
//! server never runs the statement, and its state stays true: inside an
//! explicit transaction the transaction is aborted, as after a real error,
//! and the client is told so (ReadyForQuery 'E'). The raised error also
//! carries a CONTEXT line naming the `DO` block. With `severity` FATAL the
//! error is answered by faultgate and the session ends, since a `DO` block
//! cannot raise a FATAL.
//!
//! One case it cannot serve: an extended-protocol batch (one Sync for
//! several statements, as JDBC batches send) in which a statement before
//! the matching one already failed on the server. The server then ignores
//! everything up to a Sync, the raising query included, so the client gets
//! the first error and waits for a ReadyForQuery that does not come. Sending
//! a Sync as well would answer twice whenever that earlier statement did
//! not fail, and the plugin cannot see which happened.

use faultgate_guest::postgres::{
    Message, PgAction, PgFault, PgSession, SqlMatch, check_sqlstate, error_response, message,
};
use faultgate_guest::{Attrs, ConnInfo, Description, Step, attribute};

struct PgError {
    statements: SqlMatch,
    failure: Failure,
    /// An extended-protocol batch failed: skip to its Sync.
    skipping: bool,
}

enum Failure {
    /// A Query message whose `DO` block makes the server raise the error.
    Raised(Vec<u8>),
    /// The ErrorResponse faultgate answers with before ending the session.
    Fatal(Vec<u8>),
}

/// Dollar-quote tags of the `DO` block and of the message inside it.
const BLOCK_TAG: &str = "$faultgate_pg_error$";
const TEXT_TAG: &str = "$faultgate_message$";

/// A simple-protocol Query that makes the server raise `sqlstate`.
fn raise_query(sqlstate: &str, text: &str) -> Vec<u8> {
    let sql = format!(
        "DO {BLOCK_TAG} BEGIN RAISE EXCEPTION USING ERRCODE = '{sqlstate}', \
         MESSAGE = {TEXT_TAG}{text}{TEXT_TAG}; END {BLOCK_TAG}\0"
    );
    message(b'Q', sql.as_bytes())
}

impl PgFault for PgError {
    fn describe() -> Description {
        Description::new(
            "pg_error",
            "Answers matching queries with an error of a given SQLSTATE",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[faultgate_guest::Direction::Upstream])
        .attribute(attribute::text("sqlstate", "40001", "the SQLSTATE code"))
        .attribute(attribute::text(
            "message",
            "could not serialize access due to concurrent update",
            "the error message",
        ))
        .attribute(attribute::text(
            "severity",
            "ERROR",
            "ERROR, or FATAL (the session then ends)",
        ))
        .attribute(SqlMatch::attribute())
        .wants_bytes()
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        let sqlstate = attrs.text("sqlstate", "40001")?;
        check_sqlstate("sqlstate", &sqlstate)?;
        let severity = attrs.choice("severity", "ERROR", &["ERROR", "FATAL"])?;
        let message = attrs.text(
            "message",
            "could not serialize access due to concurrent update",
        )?;
        if message.contains(BLOCK_TAG) || message.contains(TEXT_TAG) || message.contains('\0') {
            return Err(format!(
                "message: may not contain {BLOCK_TAG}, {TEXT_TAG} or a NUL byte"
            ));
        }
        let failure = if severity == "FATAL" {
            Failure::Fatal(error_response(&severity, &sqlstate, &message))
        } else {
            Failure::Raised(raise_query(&sqlstate, &message))
        };
        Ok(Self {
            statements: SqlMatch::from_attrs(attrs)?,
            failure,
            skipping: false,
        })
    }
}

impl PgSession for PgError {
    fn on_message(&mut self, message: Message) -> Vec<PgAction> {
        // `drop` ends a message's actions, so it comes last.
        if self.skipping {
            if message.tag != b'S' {
                return vec![Step::Drop.into()];
            }
            self.skipping = false;
            let Failure::Raised(query) = &self.failure else {
                unreachable!("a fatal failure ends the session")
            };
            return vec![Step::Write(query.clone()).into(), Step::Drop.into()];
        }
        if !self.statements.matches(&message) {
            return vec![PgAction::forward_all(&message)];
        }
        match &self.failure {
            Failure::Fatal(error) => vec![
                PgAction::Reply(error.clone()),
                Step::Close.into(),
                Step::Drop.into(),
            ],
            Failure::Raised(query) if message.tag == b'Q' => {
                vec![Step::Write(query.clone()).into(), Step::Drop.into()]
            }
            // Extended protocol: the server gets nothing of the batch from
            // here on, and the raising query in place of its Sync, which it
            // answers with the error and ReadyForQuery, as the client expects.
            Failure::Raised(_) => {
                self.skipping = true;
                vec![Step::Drop.into()]
            }
        }
    }
}

faultgate_guest::export_postgres_fault!(PgError);
