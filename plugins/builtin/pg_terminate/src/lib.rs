//! `pg_terminate`: what a client sees when Postgres shuts down or an
//! administrator kills its backend: `FATAL 57P01 terminating connection due
//! to administrator command`, then the connection closes.
//!
//! `when = "now"` (the default) terminates every connection open when the
//! fault is attached, and every new one at once; `when = "next"` waits for
//! the next message in the fault's direction (attached `upstream`: the
//! client's next query is answered with the error; `downstream`: the
//! server's next message is replaced by it).

use faultgate_guest::postgres::{Message, PgAction, PgFault, PgSession, error_response};
use faultgate_guest::{Attrs, ConnInfo, Description, Direction, Step, attribute};

struct Terminate {
    now: bool,
    stream: Direction,
}

impl Terminate {
    fn terminate(&self) -> Vec<PgAction> {
        let error = error_response(
            "FATAL",
            "57P01",
            "terminating connection due to administrator command",
        );
        // Upstream, the error goes back to the client as a reply; downstream
        // it is written in the server's place.
        let send = match self.stream {
            Direction::Upstream => PgAction::Reply(error),
            Direction::Downstream => PgAction::Step(Step::Write(error)),
        };
        vec![send, Step::Close.into()]
    }
}

impl PgFault for Terminate {
    fn describe() -> Description {
        Description::new(
            "pg_terminate",
            "Terminates sessions with FATAL 57P01, as a Postgres shutting down does",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
        .attribute(attribute::text(
            "when",
            "now",
            "\"now\": every session at once; \"next\": at its next message",
        ))
    }

    fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            now: attrs.choice("when", "now", &["now", "next"])? == "now",
            stream: conn.stream,
        })
    }
}

impl PgSession for Terminate {
    fn on_open(&mut self) -> Vec<PgAction> {
        if self.now {
            self.terminate()
        } else {
            Vec::new()
        }
    }

    fn on_message(&mut self, _message: Message) -> Vec<PgAction> {
        self.terminate()
    }
}

faultgate_guest::export_postgres_fault!(Terminate);
