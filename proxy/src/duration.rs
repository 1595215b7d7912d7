//! Durations as people write them: "500ms", "1.5s", "2m". One reader for
//! every place a duration is written: `faultgate serve`'s settings and
//! scenario files.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Text that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration ({reason}); write e.g. \"500ms\", \"1.5s\", \"2m\"")]
pub struct DurationError {
    text: String,
    reason: String,
}

/// Reads a duration: a number of seconds with a fraction ("1.5s"), or
/// whole units ("500ms", "2m", "1h 30m").
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    // Seconds as a decimal number first, as faultgate has always read
    // them (".5s" too); humantime reads the rest.
    if let Some(seconds) = text.strip_suffix('s').and_then(|n| n.parse::<f64>().ok())
        && !text.ends_with("ms")
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Ok(Duration::from_secs_f64(seconds));
    }
    humantime::parse_duration(text).map_err(|e| DurationError {
        text: text.to_owned(),
        reason: e.to_string(),
    })
}

/// A duration as [`parse`] reads it back: "10s", "1m 30s", "500ms".
pub fn show(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// `#[serde(deserialize_with = "crate::duration::deserialize")]`: a
/// duration written as text.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// The same for an optional field (with `#[serde(default)]`).
pub fn deserialize_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse(" 0s ").unwrap(), Duration::ZERO);
        assert_eq!(parse("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse(".5s").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn a_bad_duration_names_the_text_and_shows_the_way() {
        let error = parse("soon").unwrap_err().to_string();
        assert!(
            error.starts_with("\"soon\" is not a duration") && error.contains("\"1.5s\""),
            "{error}"
        );
        assert!(parse("-1s").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn shown_durations_read_back() {
        for text in ["10s", "500ms", "1m 30s", "0s"] {
            assert_eq!(show(parse(text).unwrap()), text);
        }
    }
}
