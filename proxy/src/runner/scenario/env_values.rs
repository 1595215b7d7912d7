//! Values taken from the environment when the file is read, before the
//! run: durations, the seed, and names. `${VAR}` and `${VAR:-default}` in
//! them are expanded from the environment alone (no step has captured
//! anything yet), so a value that does not expand to a duration or a
//! number is refused with the file's line and the field's name, by
//! `--check` too. Strings a step sends or checks are expanded later, at
//! the step, with captures (see `expanded.rs`).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::runner::vars::Vars;

/// `text` with every `${VAR}` replaced from the environment; `field`
/// names what is being read, for the message.
pub(super) fn expand_from_environment(field: &str, text: &str) -> Result<String, String> {
    Vars::default().expand(text).map_err(|e| {
        format!(
            "{field}: {e} in the environment ({field} is read before the run, \
             from the environment only; captures are not known yet)"
        )
    })
}

fn duration_in<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<Duration, D::Error> {
    let written = String::deserialize(d)?;
    let text = expand_from_environment(field, &written).map_err(de::Error::custom)?;
    crate::duration::parse(&text).map_err(|e| {
        de::Error::custom(if text == written {
            format!("{field}: {e}")
        } else {
            format!("{field}: {written:?} expands to {e}")
        })
    })
}

/// One reader per duration field, so that its message names the field.
macro_rules! durations {
    ($($kind:ident $name:ident => $field:literal;)*) => {$(
        durations!(@one $kind $name $field);
    )*};
    (@one required $name:ident $field:literal) => {
        pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            duration_in(d, $field)
        }
    };
    (@one optional $name:ident $field:literal) => {
        pub(super) fn $name<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            duration_in(d, $field).map(Some)
        }
    };
}

durations! {
    required sleep => "sleep";
    required bounce => "fault.bounce";
    optional http_timeout => "http.timeout";
    optional http_within => "http.expect.within";
    required wait_within => "wait_until.within";
    required wait_every => "wait_until.every";
    optional exec_timeout => "exec.timeout";
    optional tcp_within => "tcp.within";
    optional sql_timeout => "sql.timeout";
    optional http_no_answer_within => "http.expect.no_answer_within";
    required holds_for => "holds.for";
    required holds_every => "holds.every";
}

/// `seed = 7` or `seed = "${SEED_FROM_CI:-7}"`.
pub(super) fn seed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Seed;
    impl Visitor<'_> for Seed {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("seed: a whole number, or a string of one such as \"${SEED:-7}\"")
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(|_| E::custom(format!("seed: {n} is negative")))
        }
        fn visit_str<E: de::Error>(self, written: &str) -> Result<u64, E> {
            let text = expand_from_environment("seed", written).map_err(E::custom)?;
            text.trim().parse().map_err(|_| {
                E::custom(format!(
                    "seed: {written:?} expands to {text:?}, which is not a whole number"
                ))
            })
        }
    }
    d.deserialize_any(Seed).map(Some)
}

/// The scenario's `name`, expanded.
pub(super) fn scenario_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let written = String::deserialize(d)?;
    expand_from_environment("name", &written)
        .map(Some)
        .map_err(de::Error::custom)
}
