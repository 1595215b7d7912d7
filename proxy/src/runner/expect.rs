//! Checking one value against an expectation.
//!
//! An expectation is a literal (the value must equal it) or a comparison:
//! `< 500`, `>= 3`, `!= 0`, `== ok`, `~ regex`, where a number may be an
//! arithmetic expression over captured values: `< 1.2 * ${baseline}`.

use super::scenario::Check;
use super::vars::Vars;

/// `Ok` when `actual` meets `check`; else what was expected, in words.
pub fn check(check: &Check, actual: &str, vars: &Vars) -> Result<(), String> {
    let expected = match check {
        Check::Number(n) => {
            return match actual.trim().parse::<f64>() {
                Ok(a) if a == *n => Ok(()),
                _ => Err(format!("{}", Number(*n))),
            };
        }
        Check::Bool(b) => {
            return if actual.trim() == b.to_string() {
                Ok(())
            } else {
                Err(b.to_string())
            };
        }
        Check::Text(text) => vars.expand(text)?,
    };
    let trimmed = expected.trim_start();
    let (operator, operand) = ["<=", ">=", "==", "!=", "<", ">", "~"]
        .iter()
        .find_map(|op| trimmed.strip_prefix(op).map(|rest| (*op, rest.trim())))
        .unwrap_or(("", expected.as_str()));
    let holds = match operator {
        "" => actual == operand,
        "~" => regex::Regex::new(operand)
            .map_err(|e| format!("~ {operand}: not a regular expression: {e}"))?
            .is_match(actual),
        "==" | "!=" => {
            let equal = match (actual.trim().parse::<f64>(), arithmetic(operand)) {
                (Ok(a), Ok(b)) => a == b,
                _ => actual == operand,
            };
            equal == (operator == "==")
        }
        _ => {
            let bound = arithmetic(operand).map_err(|e| format!("{expected}: {e}"))?;
            let Ok(value) = actual.trim().parse::<f64>() else {
                return Err(format!("{expected} (a number)"));
            };
            match operator {
                "<" => value < bound,
                "<=" => value <= bound,
                ">" => value > bound,
                _ => value >= bound,
            }
        }
    };
    if holds { Ok(()) } else { Err(expected) }
}

/// Shows 200.0 as 200.
struct Number(f64);

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            write!(f, "{}", self.0 as i64)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Evaluates `+ - * /` and parentheses over numbers.
pub fn arithmetic(text: &str) -> Result<f64, String> {
    let tokens: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut at = 0;
    let value = sum(&tokens, &mut at)?;
    if at != tokens.len() {
        return Err(format!("cannot read {text:?} as a number or arithmetic"));
    }
    Ok(value)
}

fn sum(t: &[char], at: &mut usize) -> Result<f64, String> {
    let mut value = product(t, at)?;
    while let Some(op @ ('+' | '-')) = t.get(*at).copied() {
        *at += 1;
        let rhs = product(t, at)?;
        value = if op == '+' { value + rhs } else { value - rhs };
    }
    Ok(value)
}

fn product(t: &[char], at: &mut usize) -> Result<f64, String> {
    let mut value = atom(t, at)?;
    while let Some(op @ ('*' | '/')) = t.get(*at).copied() {
        *at += 1;
        let rhs = atom(t, at)?;
        value = if op == '*' { value * rhs } else { value / rhs };
    }
    Ok(value)
}

fn atom(t: &[char], at: &mut usize) -> Result<f64, String> {
    if t.get(*at) == Some(&'(') {
        *at += 1;
        let value = sum(t, at)?;
        if t.get(*at) != Some(&')') {
            return Err("a ( is not closed".into());
        }
        *at += 1;
        return Ok(value);
    }
    let start = *at;
    if matches!(t.get(*at), Some('-')) {
        *at += 1;
    }
    while t
        .get(*at)
        .is_some_and(|c| c.is_ascii_digit() || *c == '.' || *c == 'e')
    {
        *at += 1;
    }
    let number: String = t[start..*at].iter().collect();
    number.parse().map_err(|_| {
        format!(
            "expected a number, found {:?}",
            t[start..].iter().collect::<String>()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Check {
        Check::Text(s.into())
    }

    #[test]
    fn comparisons_and_arithmetic_over_captures() {
        let mut vars = Vars::default();
        vars.set("baseline", "100".into());
        assert!(check(&text("< 1.2 * ${baseline}"), "119", &vars).is_ok());
        assert_eq!(
            check(&text("< 1.2 * ${baseline}"), "121", &vars).unwrap_err(),
            "< 1.2 * 100"
        );
        assert!(check(&text(">= 3"), "3", &vars).is_ok());
        assert!(check(&text("!= 0"), "1", &vars).is_ok());
        assert!(check(&text("~ ^ok"), "okay", &vars).is_ok());
        assert!(check(&text("exact"), "exact", &vars).is_ok());
        assert!(check(&Check::Number(200.0), "200", &vars).is_ok());
        assert_eq!(
            check(&Check::Number(200.0), "503", &vars).unwrap_err(),
            "200"
        );
        assert_eq!(arithmetic("(1 + 2) * 3 - 4 / 2").unwrap(), 7.0);
    }
}
