//! Checks, before a run, of the expectations that something must not
//! happen (an answer, a connection, a query's success) and of `holds`:
//! those that cannot be combined with the others, or with the step.

use super::kinds::{Action, HttpExpect};

/// `Err` names the field and why it cannot be written so.
pub(super) fn check(action: &Action) -> Result<(), String> {
    match action {
        Action::Http(h) if h.expect.no_answer_within.is_some() => {
            let HttpExpect {
                status,
                headers,
                json,
                body_contains,
                within,
                no_answer_within: _,
            } = &h.expect;
            if status.is_some()
                || !headers.is_empty()
                || !json.is_empty()
                || body_contains.is_some()
                || within.is_some()
            {
                return Err("http.expect.no_answer_within: the request must not be \
                            answered, so it takes no other expectation"
                    .into());
            }
            if h.timeout.is_some() {
                return Err("http: with expect.no_answer_within the step waits that \
                            long; drop `timeout`"
                    .into());
            }
        }
        Action::Sql(s) => {
            let x = &s.expect;
            if (x.sqlstate.is_some() || x.error.is_some())
                && (x.value.is_some() || x.rows.is_some())
            {
                return Err(
                    "sql.expect: sqlstate and error say the query must fail, so \
                            it has no value or rows to check"
                        .into(),
                );
            }
        }
        Action::Tcp(t) if t.failure.is_some() && t.connects => {
            return Err("tcp.failure: says how a connection must fail; write \
                        connects = false with it"
                .into());
        }
        Action::Holds(h) => {
            if matches!(
                *h.check,
                Action::WaitUntil(_) | Action::Holds(_) | Action::Sleep(_) | Action::Capture(_)
            ) {
                return Err(format!(
                    "holds: repeats a check (http, exec, tcp, sql, fault), not a {} step",
                    h.check.kind()
                ));
            }
            if h.every.is_zero() || h.every > h.duration {
                return Err(format!(
                    "holds: every ({:?}) must be more than zero and at most `for` ({:?})",
                    h.every, h.duration
                ));
            }
        }
        _ => {}
    }
    Ok(())
}
