//! Expected statuses and exit codes written with variables
//! (`status = "${CODE}"`): checked to be numbers or comparisons once the
//! environment's values are in, when the file is read.

use super::env_values::expand_from_environment;
use super::kinds::{Action, Check};
use crate::runner::vars;

/// Checks that an expected status or exit code is a number or a
/// comparison once its environment variables are in. One that refers to a
/// capture is known only at its step, and is checked there as any value.
pub(super) fn check_numbers(action: &Action) -> Result<(), String> {
    match action {
        Action::Http(h) => number_check("http.expect.status", h.expect.status.as_ref(), &[]),
        Action::Exec(e) =>
        // A command ended by a signal has the code "killed".
        {
            number_check("exec.expect.code", e.expect.code.as_ref(), &["killed"])
        }
        Action::WaitUntil(w) => check_numbers(&w.check),
        Action::Capture(c) => check_numbers(&c.from),
        _ => Ok(()),
    }
}

fn number_check(field: &str, check: Option<&Check>, words: &[&str]) -> Result<(), String> {
    let Some(Check::Text(written)) = check else {
        return Ok(());
    };
    let from_environment_only = vars::references(written)
        .iter()
        .all(|r| r.default.is_some() || std::env::var_os(&r.name).is_some());
    if !from_environment_only {
        return Ok(());
    }
    let text = expand_from_environment(field, written)?;
    let trimmed = text.trim();
    let comparison = ["<=", ">=", "==", "!=", "<", ">", "~"]
        .iter()
        .find_map(|op| trimmed.strip_prefix(op).map(|rest| (*op, rest.trim())));
    let readable = match comparison {
        None => trimmed.parse::<f64>().is_ok(),
        Some(("~" | "==" | "!=", _)) => true,
        Some((_, operand)) => crate::runner::expect::arithmetic(operand).is_ok(),
    };
    if readable || words.contains(&trimmed) {
        return Ok(());
    }
    let shown = if text == *written {
        format!("{written:?}")
    } else {
        format!("{written:?} expands to {text:?}, which")
    };
    Err(format!(
        "{field}: {shown} is not a number or a comparison such as \"< 500\" or \">= 1\""
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Scenario;

    fn exec_expecting(code: &str) -> Result<Scenario, String> {
        let text = format!(
            "[[steps]]\nexec = {{ command = \"kill -9 $$\", expect = {{ code = {code:?} }} }}\n"
        );
        Scenario::parse(&text, Path::new("s.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn an_exit_code_is_a_number_a_comparison_or_killed() {
        for good in ["0", "!= 0", ">= 1", "killed", "~ ^1"] {
            assert!(exec_expecting(good).is_ok(), "{good}");
        }
        let err = exec_expecting("OK").unwrap_err();
        assert!(
            err.contains("s.toml:1:") && err.contains("exec.expect.code: \"OK\" is not a number"),
            "{err}"
        );
    }
}
