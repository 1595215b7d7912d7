//! `faultgate plugin new --lang js`: not written yet.

use super::Template;

pub(super) fn template(_name: &str, _http: bool) -> anyhow::Result<Template> {
    anyhow::bail!("--lang js is not available yet")
}
