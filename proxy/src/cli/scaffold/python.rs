//! `faultgate plugin new --lang python`: not written yet.

use super::Template;

pub(super) fn template(_name: &str, _http: bool) -> anyhow::Result<Template> {
    anyhow::bail!("--lang python is not available yet")
}
