//! `faultgate plugin new --lang c`: not written yet.

use super::Template;

pub(super) fn template(_name: &str, _http: bool) -> anyhow::Result<Template> {
    anyhow::bail!("--lang c is not available yet")
}
