//! `pg_delay_query`: delays the client's queries whose SQL matches
//! `sql_regex`, simple (Query) and extended (Parse) alike, by `delay`
//! milliseconds. Attach it `upstream`: it acts on the client's messages.

use faultgate_guest::postgres::{Message, PgAction, PgFault, PgSession, SqlMatch};
use faultgate_guest::{Attrs, ConnInfo, Description, MAX_MILLIS, attribute, step};

struct DelayQuery {
    delay_ms: u64,
    statements: SqlMatch,
}

impl PgFault for DelayQuery {
    fn describe() -> Description {
        Description::new("pg_delay_query", "Delays queries whose SQL matches a regex")
            .version(env!("CARGO_PKG_VERSION"))
            .streams(&[faultgate_guest::Direction::Upstream])
            .attribute(attribute::integer("delay", 0, "delay in milliseconds"))
            .attribute(SqlMatch::attribute())
            .wants_bytes()
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            delay_ms: attrs.up_to("delay", 0, MAX_MILLIS, "milliseconds")?,
            statements: SqlMatch::from_attrs(attrs)?,
        })
    }
}

impl PgSession for DelayQuery {
    fn on_message(&mut self, message: Message) -> Vec<PgAction> {
        if self.statements.matches(&message) {
            vec![
                step::sleep_ms(self.delay_ms).into(),
                PgAction::forward_all(&message),
            ]
        } else {
            vec![PgAction::forward_all(&message)]
        }
    }
}

faultgate_guest::export_postgres_fault!(DelayQuery);
