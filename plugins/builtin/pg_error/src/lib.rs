//! `pg_error`: answers the client's queries whose SQL matches `sql_regex`
//! with an ErrorResponse of a given SQLSTATE (e.g. 40001 serialization
//! failure, 53300 too many connections, 57014 query canceled), and keeps the
//! session usable, as Postgres does: ReadyForQuery follows, and for the
//! extended protocol the rest of the batch is skipped up to its Sync. The
//! server never sees the statement. Attach it `upstream`.
//!
//! The ReadyForQuery says "idle": inside an explicit transaction the
//! server's transaction is not aborted, unlike a real error's.

use faultgate_guest::postgres::{
    Message, PgAction, PgFault, SqlMatch, check_sqlstate, error_response, ready_for_query,
};
use faultgate_guest::{Attrs, ConnInfo, Description, Step, attribute};

struct PgError {
    statements: SqlMatch,
    error: Vec<u8>,
    /// An extended-protocol batch failed: skip to its Sync.
    skipping: bool,
}

impl PgFault for PgError {
    fn describe() -> Description {
        Description::new(
            "pg_error",
            "Answers matching queries with an error of a given SQLSTATE",
        )
        .version(env!("CARGO_PKG_VERSION"))
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
        Ok(Self {
            statements: SqlMatch::from_attrs(attrs)?,
            error: error_response(&severity, &sqlstate, &message),
            skipping: false,
        })
    }

    fn on_message(&mut self, message: Message) -> Vec<PgAction> {
        let fatal = self.error.windows(7).any(|w| w == b"SFATAL\0");
        if self.skipping {
            if message.tag == b'S' {
                self.skipping = false;
                return vec![PgAction::Reply(ready_for_query(b'I')), Step::Drop.into()];
            }
            return vec![Step::Drop.into()];
        }
        if !self.statements.matches(&message) {
            return vec![PgAction::forward_all(&message)];
        }
        // The statement never reaches the server: the reply takes its place
        // (`drop` ends the message's actions, so it comes last).
        let mut actions = vec![PgAction::Reply(self.error.clone())];
        if fatal {
            actions.push(Step::Close.into());
        } else if message.tag == b'Q' {
            actions.push(PgAction::Reply(ready_for_query(b'I')));
        } else {
            self.skipping = true;
        }
        actions.push(Step::Drop.into());
        actions
    }
}

faultgate_guest::export_postgres_fault!(PgError);
