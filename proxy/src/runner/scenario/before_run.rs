//! What is checked in a scenario before anything runs, beyond the file's
//! shape.

use std::collections::BTreeMap;

use crate::runner::vars;

use super::ProxyRef;
use super::kinds::Action;

/// What can be checked before running and is not the file's shape:
/// proxies declared, steps that can be waited on or captured from,
/// captures made before use, methods that exist.
pub(super) fn check_action(
    action: &Action,
    proxies: &BTreeMap<String, ProxyRef>,
    captures: &[String],
) -> Result<(), String> {
    super::negative::check(action)?;
    match action {
        Action::Fault(f) => {
            if !proxies.contains_key(&f.proxy) {
                return Err(format!(
                    "fault.proxy: {:?} is not declared under [proxies] (declared: {})",
                    f.proxy,
                    proxies.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Action::WaitUntil(w) => {
            if matches!(
                *w.check,
                Action::WaitUntil(_) | Action::Holds(_) | Action::Sleep(_)
            ) {
                return Err(format!(
                    "wait_until: cannot wait on a {} step",
                    w.check.kind()
                ));
            }
            check_action(&w.check, proxies, captures)?;
        }
        Action::Capture(c) => {
            if matches!(
                *c.from,
                Action::Capture(_)
                    | Action::WaitUntil(_)
                    | Action::Sleep(_)
                    | Action::Fault(_)
                    | Action::Tcp(_)
                    | Action::Holds(_)
            ) {
                return Err(format!(
                    "capture: takes a value from an http, exec or sql step, not {}",
                    c.from.kind()
                ));
            }
            check_action(&c.from, proxies, captures)?;
        }
        Action::Http(h) => {
            if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
                .contains(&h.method.to_ascii_uppercase().as_str())
            {
                return Err(format!("http.method: {:?} is not an HTTP method", h.method));
            }
            if h.json.is_some() && h.body.is_some() {
                return Err("http: give json or body, not both".into());
            }
        }
        Action::Holds(h) => check_action(&h.check, proxies, captures)?,
        Action::Sleep(_) | Action::Exec(_) | Action::Tcp(_) | Action::Sql(_) => {}
    }
    let references = vars::references(action);
    for reference in &references {
        let var = &reference.name;
        let known = captures.contains(var) || std::env::var_os(var).is_some() || var == "SEED";
        let always_defaulted = references
            .iter()
            .filter(|r| r.name == *var)
            .all(|r| r.default.is_some());
        if !known && !always_defaulted {
            return Err(format!(
                "${{{var}}} is neither set in the environment nor captured by an earlier step"
            ));
        }
    }
    Ok(())
}
