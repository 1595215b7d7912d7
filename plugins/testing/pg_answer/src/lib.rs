//! `pg_answer`: a Postgres plugin for faultgate's own tests. It answers the
//! client's simple queries whose SQL matches `sql_regex` itself, with one
//! row holding "answered by faultgate", and never passes them to the server;
//! with `pad` > 0 a NoticeResponse of that many bytes comes first, so that a
//! test can make each reply as large as it needs. Attach it `upstream`.

use faultgate_guest::postgres::{Message, PgAction, PgFault, PgSession, SqlMatch, message};
use faultgate_guest::{Attrs, ConnInfo, Description, Step, attribute};

/// The most padding one reply may carry.
const MAX_PAD: u64 = 1 << 20;

struct Answer {
    statements: SqlMatch,
    reply: Vec<u8>,
}

/// The reply to one query: an optional notice of `pad` bytes, then a result
/// of one text row and ReadyForQuery.
fn reply(pad: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if pad > 0 {
        let mut notice = b"SNOTICE\0C00000\0M".to_vec();
        notice.resize(pad.max(notice.len() + 2) - 2, b'x');
        notice.extend_from_slice(b"\0\0");
        out.extend(message(b'N', &notice));
    }
    // RowDescription: one column "answer", of type text (oid 25).
    let mut columns = 1u16.to_be_bytes().to_vec();
    columns.extend_from_slice(b"answer\0");
    columns.extend_from_slice(&0u32.to_be_bytes());
    columns.extend_from_slice(&0u16.to_be_bytes());
    columns.extend_from_slice(&25u32.to_be_bytes());
    columns.extend_from_slice(&(-1i16).to_be_bytes());
    columns.extend_from_slice(&(-1i32).to_be_bytes());
    columns.extend_from_slice(&0u16.to_be_bytes());
    out.extend(message(b'T', &columns));
    let value = b"answered by faultgate";
    let mut row = 1u16.to_be_bytes().to_vec();
    row.extend_from_slice(&(value.len() as u32).to_be_bytes());
    row.extend_from_slice(value);
    out.extend(message(b'D', &row));
    out.extend(message(b'C', b"SELECT 1\0"));
    out.extend(message(b'Z', b"I"));
    out
}

impl PgFault for Answer {
    fn describe() -> Description {
        Description::new(
            "pg_answer",
            "Answers matching simple queries itself with one row (tests only)",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .attribute(SqlMatch::attribute())
        .attribute(attribute::integer(
            "pad",
            0,
            "bytes of NoticeResponse sent before each answer",
        ))
        .wants_bytes()
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        let pad = attrs.up_to("pad", 0, MAX_PAD, "bytes")? as usize;
        Ok(Self {
            statements: SqlMatch::from_attrs(attrs)?,
            reply: reply(pad),
        })
    }
}

impl PgSession for Answer {
    fn on_message(&mut self, message: Message) -> Vec<PgAction> {
        if message.tag == b'Q' && self.statements.matches(&message) {
            vec![PgAction::Reply(self.reply.clone()), Step::Drop.into()]
        } else {
            vec![PgAction::forward_all(&message)]
        }
    }
}

faultgate_guest::export_postgres_fault!(Answer);
