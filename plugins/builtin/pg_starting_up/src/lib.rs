//! `pg_starting_up`: a Postgres that is coming back. New sessions are
//! refused with `FATAL 57P03 the database system is starting up`; sessions
//! already past their startup are left alone.

use faultgate_guest::postgres::{Message, PgAction, PgFault, PgSession, error_response};
use faultgate_guest::{Attrs, ConnInfo, Description, Direction, Step};

struct StartingUp {
    stream: Direction,
    /// Whether this direction's first message has gone by.
    started: bool,
}

impl PgFault for StartingUp {
    fn describe() -> Description {
        Description::new(
            "pg_starting_up",
            "Refuses new sessions with FATAL 57P03, as a Postgres starting up does",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
    }

    fn new(conn: &ConnInfo, _attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            stream: conn.stream,
            started: false,
        })
    }
}

impl PgSession for StartingUp {
    fn on_message(&mut self, message: Message) -> Vec<PgAction> {
        // A session's first message: the client's startup packet (upstream),
        // or the server's answer to it (downstream). A fault attached to a
        // session already running sees neither.
        let first = match self.stream {
            Direction::Upstream => message.tag == 0,
            Direction::Downstream => !self.started && message.tag == b'R',
        };
        self.started = true;
        if !first {
            return vec![PgAction::forward_all(&message)];
        }
        let error = error_response("FATAL", "57P03", "the database system is starting up");
        let send = match self.stream {
            Direction::Upstream => PgAction::Reply(error),
            Direction::Downstream => PgAction::Step(Step::Write(error)),
        };
        vec![send, Step::Close.into()]
    }
}

faultgate_guest::export_postgres_fault!(StartingUp);
