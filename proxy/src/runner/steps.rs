//! Carrying out one step.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::{Answer, ControlFailure, HttpClient};
use super::expect::check;
use super::outcome::{Done, Failed, check_words, db_error, plain};
use super::scenario::{
    Action, CaptureStep, Check, ExecStep, FaultOperation, FaultStep, HttpExpect, HttpStep,
    ProxyRef, SqlStep, TcpStep, WaitStep,
};
use super::trace::{Attempt, Detail, FaultEffect, Trace};
use super::vars::Vars;

/// How much of a response body a failure message quotes.
const BODY_QUOTE: usize = 2048;

pub struct Context<'a> {
    pub client: &'a HttpClient,
    pub proxies: &'a BTreeMap<String, ProxyRef>,
    pub vars: &'a mut Vars,
    /// What the step does, for the HTML report.
    pub trace: Trace,
}

impl Context<'_> {
    pub async fn run(&mut self, action: &Action) -> Result<Done, Failed> {
        match action {
            Action::Fault(f) => self.fault(f).await,
            Action::Http(h) => self.http(h).await,
            Action::WaitUntil(w) => Box::pin(self.wait_until(w)).await,
            Action::Sleep(d) => {
                tokio::time::sleep(*d).await;
                Ok(Done::default())
            }
            Action::Exec(e) => self.exec(e).await,
            Action::Tcp(t) => self.tcp(t).await,
            Action::Sql(s) => self.sql(s).await,
            Action::Capture(c) => Box::pin(self.capture(c)).await,
            Action::Holds(h) => Box::pin(self.holds(h)).await,
        }
    }

    async fn fault(&mut self, f: &FaultStep) -> Result<Done, Failed> {
        let api = self.vars.expand(&self.proxies[&f.proxy].api)?;
        let base = format!("{}/proxies/{}", api.trim_end_matches('/'), f.proxy);
        let toxics = format!("{base}/toxics");
        let mut removed = String::new();
        let (method, url, body) = match &f.operation {
            FaultOperation::Bounce(starting_up) => {
                return self.bounce(&f.proxy, &base, *starting_up).await;
            }
            FaultOperation::Add(toxic) => ("POST", toxics, Some(self.vars.expand_json(toxic)?)),
            FaultOperation::Remove(name) => {
                removed = self.vars.expand(name)?;
                ("DELETE", format!("{toxics}/{removed}"), None)
            }
            FaultOperation::Replace(chain) => {
                let chain = self.vars.expand_json(&Value::Array(chain.clone()))?;
                ("PUT", toxics, Some(chain))
            }
            FaultOperation::Clear => ("PUT", toxics, Some(json!([]))),
            FaultOperation::Enabled(enabled) => {
                ("PATCH", base, Some(json!({ "enabled": enabled })))
            }
        };
        self.trace.detail.sent = Some(match &body {
            Some(body) => format!("{method} {url}\n{body}"),
            None => format!("{method} {url}"),
        });
        let answer = self.control(method, &url, body.as_ref()).await?;
        self.trace.detail.got = Some(if answer.is_null() {
            "done (no body)".to_owned()
        } else {
            cut(&answer.to_string())
        });
        let effect = match &f.operation {
            FaultOperation::Add(_) => FaultEffect::Added(plain(&answer["name"])),
            FaultOperation::Remove(_) => FaultEffect::Removed(removed),
            FaultOperation::Enabled(enabled) => FaultEffect::Enabled(*enabled),
            FaultOperation::Replace(_) | FaultOperation::Clear | FaultOperation::Bounce(_) => {
                FaultEffect::Chain(names(&answer))
            }
        };
        self.trace.changed(&f.proxy, effect);
        Ok(Done::default())
    }

    /// A Postgres bounce: every session terminated (57P01), new ones refused
    /// (57P03) for `starting_up`, then the chain as it was.
    async fn bounce(
        &mut self,
        proxy: &str,
        base: &str,
        starting_up: Duration,
    ) -> Result<Done, Failed> {
        let toxics = format!("{base}/toxics");
        let before = self.control("GET", &toxics, None).await?;
        let with = |toxic: Value| {
            let mut chain = before.as_array().cloned().unwrap_or_default();
            chain.push(toxic);
            Value::Array(chain)
        };
        let terminating = with(json!({ "name": "bounce_terminate", "type": "pg_terminate" }));
        let answer = self.control("PUT", &toxics, Some(&terminating)).await?;
        self.trace
            .changed(proxy, FaultEffect::Chain(names(&answer)));
        // Long enough for every open session's pump to act on it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let refusing = with(json!({
            "name": "bounce_starting_up", "type": "pg_starting_up", "stream": "upstream"
        }));
        let answer = self.control("PUT", &toxics, Some(&refusing)).await?;
        self.trace
            .changed(proxy, FaultEffect::Chain(names(&answer)));
        tokio::time::sleep(starting_up).await;
        let answer = self.control("PUT", &toxics, Some(&before)).await?;
        self.trace
            .changed(proxy, FaultEffect::Chain(names(&answer)));
        Ok(Done {
            note: Some(format!("terminated, then starting up for {starting_up:?}")),
            ..Done::default()
        })
    }

    async fn control(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, Failed> {
        match self.client.control(method, url, body).await {
            Ok(answer) => Ok(answer),
            Err(ControlFailure::Unreachable(m)) => Err(Failed::Stack(m)),
            Err(ControlFailure::Refused {
                status: 400 | 404 | 409,
                message,
            }) => Err(Failed::BadScenario(format!(
                "the control API refused the fault as bad input: {message}"
            ))),
            Err(refused) => Err(Failed::Check(format!("the control API refused: {refused}"))),
        }
    }

    async fn http(&mut self, h: &HttpStep) -> Result<Done, Failed> {
        let url = self.vars.expand(&h.url)?;
        let mut headers = Vec::new();
        for (name, value) in &h.headers {
            headers.push((name.clone(), self.vars.expand(value)?));
        }
        let body = match (&h.json, &h.body) {
            (Some(json), _) => {
                headers.push(("content-type".into(), "application/json".into()));
                Some(self.vars.expand_json(json)?.to_string().into_bytes())
            }
            (None, Some(text)) => Some(self.vars.expand(text)?.into_bytes()),
            (None, None) => None,
        };
        // Once `within` has passed the answer can no longer pass: the wait
        // stops there, not at the step's timeout.
        let timeout = h.timeout.unwrap_or(Duration::from_secs(30));
        let timeout = h
            .expect
            .within
            .map_or(timeout, |within| within.min(timeout));
        self.trace.detail = Detail {
            sent: Some(sent_words(&h.method, &url, &headers, body.as_deref())),
            expected: Some(http_expected(&h.expect)),
            got: None,
            body: None,
        };
        if let Some(quiet) = h.expect.no_answer_within {
            return self.no_answer(&h.method, &url, &headers, body, quiet).await;
        }
        let answer = self
            .client
            .send(&h.method, &url, &headers, body, timeout)
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                self.trace.detail.got = Some(format!("no answer: {error}"));
                return Err(error.into());
            }
        };
        self.trace.detail.got = Some(format!(
            "{} in {:.0?}\n{}",
            answer.status,
            answer.elapsed,
            answer
                .headers
                .iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
        self.trace.detail.body = Some(cut(answer.body.trim()));
        let fail = |what: String| Failed::Check(format!("{what}{}", quote_body(&answer)));
        let e = &h.expect;
        match &e.status {
            Some(expected) => check(expected, &answer.status.to_string(), self.vars)
                .map_err(|x| fail(format!("expected status {x}, got {}", answer.status)))?,
            None if answer.status >= 400 => {
                return Err(fail(format!(
                    "expected a successful status, got {}",
                    answer.status
                )));
            }
            None => {}
        }
        for (name, expected) in &e.headers {
            let actual = answer
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone());
            let Some(actual) = actual else {
                return Err(fail(format!("expected header {name}, it is missing")));
            };
            check(expected, &actual, self.vars)
                .map_err(|x| fail(format!("expected header {name}: {x}, got {actual:?}")))?;
        }
        let json: Option<Value> = serde_json::from_str(&answer.body).ok();
        for (path, expected) in &e.json {
            let Some(json) = &json else {
                return Err(fail(format!("expected a JSON body for {path}")));
            };
            let actual = json_at(json, path).map_err(&fail)?;
            let shown = plain(&actual);
            check(expected, &shown, self.vars)
                .map_err(|x| fail(format!("expected {path} {x}, got {shown}")))?;
        }
        if let Some(text) = &e.body_contains {
            let text = self.vars.expand(text)?;
            if !answer.body.contains(&text) {
                return Err(fail(format!("expected the body to contain {text:?}")));
            }
        }
        if let Some(within) = e.within
            && answer.elapsed > within
        {
            return Err(fail(format!(
                "expected an answer within {within:?}, it took {:?}",
                answer.elapsed
            )));
        }
        let mut values = BTreeMap::new();
        values.insert("status".into(), answer.status.to_string());
        values.insert("body".into(), answer.body.clone());
        Ok(Done {
            note: Some(format!("{} in {:.0?}", answer.status, answer.elapsed)),
            values,
            json,
        })
    }

    async fn wait_until(&mut self, w: &WaitStep) -> Result<Done, Failed> {
        let started = Instant::now();
        let attempt_limit = w.every.max(Duration::from_secs(1));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let at = self.trace.now();
            let attempt = tokio::time::timeout(attempt_limit, self.run(&w.check)).await;
            let message = match &attempt {
                Ok(Ok(_)) => None,
                Ok(Err(Failed::Check(m) | Failed::Stack(m) | Failed::BadScenario(m))) => {
                    Some(m.clone())
                }
                Err(_) => Some(format!("the check took longer than {attempt_limit:?}")),
            };
            self.trace.attempts.push(Attempt {
                at,
                took: self.trace.now().saturating_sub(at),
                passed: message.is_none(),
                message,
            });
            let last = match attempt {
                Ok(Ok(done)) => {
                    let took = started.elapsed();
                    return Ok(Done {
                        note: Some(format!(
                            "held after {:.2}s ({attempts} attempt{})",
                            took.as_secs_f64(),
                            if attempts == 1 { "" } else { "s" }
                        )),
                        values: BTreeMap::from([(
                            "seconds".into(),
                            format!("{:.3}", took.as_secs_f64()),
                        )]),
                        json: done.json,
                    });
                }
                Ok(Err(stop @ (Failed::Stack(_) | Failed::BadScenario(_)))) => return Err(stop),
                Ok(Err(Failed::Check(m))) => m,
                Err(_) => format!("the check took longer than {attempt_limit:?}"),
            };
            if started.elapsed() + w.every > w.within {
                return Err(Failed::Check(format!(
                    "did not hold within {:?} ({attempts} attempts); the last: {last}",
                    w.within
                )));
            }
            tokio::time::sleep(w.every).await;
        }
    }

    async fn exec(&mut self, e: &ExecStep) -> Result<Done, Failed> {
        let command = self.vars.expand(&e.command)?;
        let timeout = e.timeout.unwrap_or(Duration::from_secs(60));
        self.trace.detail = Detail {
            sent: Some(format!("sh -c {command:?}")),
            expected: Some(exec_expected(&e.expect)),
            got: None,
            body: None,
        };
        let child = tokio::process::Command::new("sh")
            .args(["-c", &command])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|err| format!("cannot run sh -c {command:?}: {err}"))?;
        let pid = child.id();
        let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(out) => out.map_err(|err| format!("{command:?}: {err}"))?,
            Err(_) => {
                if let Some(pid) = pid {
                    // The whole group: the shell and what it started.
                    // Safety: kill(2) on a process group we created.
                    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                }
                return Err(Failed::Check(format!(
                    "{command:?} did not finish within {timeout:?} (killed)"
                )));
            }
        };
        let code = out
            .status
            .code()
            .map_or("killed".to_owned(), |c| c.to_string());
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        self.trace.detail.got = Some(format!("exit code {code}"));
        self.trace.detail.body = Some(format!(
            "stdout: {}\nstderr: {}",
            cut(stdout.trim()),
            cut(stderr.trim())
        ));
        let shown = |what: String| {
            Failed::Check(format!(
                "{what}\n  stdout: {}\n  stderr: {}",
                cut(stdout.trim()),
                cut(stderr.trim())
            ))
        };
        let x = &e.expect;
        let code_check = x.code.clone().unwrap_or(Check::Number(0.0));
        check(&code_check, &code, self.vars)
            .map_err(|exp| shown(format!("expected exit code {exp}, got {code}")))?;
        if let Some(c) = &x.stdout {
            check(c, stdout.trim(), self.vars)
                .map_err(|exp| shown(format!("expected stdout {exp}")))?;
        }
        if let Some(c) = &x.stderr {
            check(c, stderr.trim(), self.vars)
                .map_err(|exp| shown(format!("expected stderr {exp}")))?;
        }
        Ok(Done {
            note: None,
            values: BTreeMap::from([
                ("stdout".into(), stdout.trim().to_owned()),
                ("stderr".into(), stderr.trim().to_owned()),
                ("code".into(), code),
            ]),
            json: None,
        })
    }

    async fn tcp(&mut self, t: &TcpStep) -> Result<Done, Failed> {
        let address = self.vars.expand(&t.address)?;
        let within = t.within.unwrap_or(Duration::from_secs(2));
        self.trace.detail = Detail {
            sent: Some(format!("connect to {address}")),
            expected: Some(format!(
                "{} within {within:?}",
                if let Some(failure) = t.failure {
                    Self::tcp_failure_words(failure)
                } else if t.connects {
                    "a connection"
                } else {
                    "no connection"
                }
            )),
            got: None,
            body: None,
        };
        let connected =
            tokio::time::timeout(within, tokio::net::TcpStream::connect(&address)).await;
        let outcome = match &connected {
            Ok(Ok(_)) => "connected".to_owned(),
            Ok(Err(e)) => format!("failed: {e}"),
            Err(_) => format!("no connection within {within:?}"),
        };
        self.trace.detail.got = Some(outcome.clone());
        if let Some(failure) = t.failure {
            return Self::tcp_failure(failure, &address, &connected, outcome);
        }
        if matches!(connected, Ok(Ok(_))) == t.connects {
            Ok(Done {
                note: Some(outcome),
                ..Done::default()
            })
        } else {
            let wanted = if t.connects {
                "a connection"
            } else {
                "no connection"
            };
            Err(Failed::Check(format!(
                "expected {wanted} to {address}, got: {outcome}"
            )))
        }
    }

    async fn sql(&mut self, s: &SqlStep) -> Result<Done, Failed> {
        let connect = self.vars.expand(&s.connect)?;
        let query = self.vars.expand(&s.query)?;
        let timeout = s.timeout.unwrap_or(Duration::from_secs(30));
        self.trace.detail = Detail {
            sent: Some(format!("query {query:?}")),
            expected: Some(sql_expected(&s.expect)),
            got: None,
            body: None,
        };
        // A refused connection is an answer too: an expected SQLSTATE
        // (57P03 while Postgres starts up) may come at connect.
        let work = async {
            let (client, connection) =
                tokio_postgres::connect(&connect, tokio_postgres::NoTls).await?;
            let driver = tokio::spawn(connection);
            let result = client.simple_query(&query).await;
            drop(client);
            let _ = driver.await;
            result
        };
        let result = tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| format!("{query:?}: no answer within {timeout:?}"))?;
        self.trace.detail.got = Some(match &result {
            Ok(messages) => {
                let rows = messages
                    .iter()
                    .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
                    .count();
                format!("{rows} row{}", if rows == 1 { "" } else { "s" })
            }
            Err(e) => db_error(e),
        });
        let x = &s.expect;
        if x.error.is_some() {
            return Self::sql_error(x, result, &query, self.vars);
        }
        let messages = match (result, &x.sqlstate) {
            (Err(e), Some(wanted)) => {
                let got = e.as_db_error().map(|d| d.code().code().to_owned());
                return if got.as_deref() == Some(wanted) {
                    Ok(Done::default())
                } else {
                    Err(Failed::Check(format!(
                        "expected SQLSTATE {wanted}, got {}",
                        db_error(&e)
                    )))
                };
            }
            (Ok(_), Some(wanted)) => {
                return Err(Failed::Check(format!(
                    "expected SQLSTATE {wanted}, the query succeeded"
                )));
            }
            (Err(e), None) => return Err(Failed::Check(format!("{query:?}: {}", db_error(&e)))),
            (Ok(messages), None) => messages,
        };
        let rows: Vec<_> = messages
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .collect();
        let value = rows
            .first()
            .and_then(|r| r.get(0))
            .unwrap_or_default()
            .to_owned();
        if let Some(c) = &x.rows {
            check(c, &rows.len().to_string(), self.vars)
                .map_err(|exp| format!("expected {exp} rows, got {}", rows.len()))?;
        }
        if let Some(c) = &x.value {
            check(c, &value, self.vars).map_err(|exp| format!("expected {exp}, got {value:?}"))?;
        }
        Ok(Done {
            note: None,
            values: BTreeMap::from([
                ("value".into(), value),
                ("rows".into(), rows.len().to_string()),
            ]),
            json: None,
        })
    }

    async fn capture(&mut self, c: &CaptureStep) -> Result<Done, Failed> {
        let done = self.run(&c.from).await?;
        let value = if c.value.starts_with('/') || c.value.starts_with('$') {
            let json = done
                .json
                .as_ref()
                .ok_or_else(|| format!("capture {}: the answer is not JSON", c.var))?;
            plain(&json_at(json, &c.value)?)
        } else {
            done.values.get(&c.value).cloned().ok_or_else(|| {
                format!(
                    "capture {}: a {} step has no {:?}; it has: {}",
                    c.var,
                    c.from.kind(),
                    c.value,
                    done.values.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?
        };
        self.vars.set(&c.var, value.clone());
        Ok(Done {
            note: Some(format!("{} = {}", c.var, cut(&value))),
            ..Done::default()
        })
    }
}

/// The names of the toxics in a chain as the API shows it.
fn names(chain: &Value) -> Vec<String> {
    chain
        .as_array()
        .map(|a| a.iter().map(|t| plain(&t["name"])).collect())
        .unwrap_or_default()
}

/// A request as the report shows it: line, headers, body.
fn sent_words(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> String {
    let mut text = format!("{method} {url}");
    for (name, value) in headers {
        text.push_str(&format!("\n{name}: {value}"));
    }
    if let Some(body) = body {
        text.push_str("\n\n");
        text.push_str(&cut(&String::from_utf8_lossy(body)));
    }
    text
}

fn http_expected(e: &HttpExpect) -> String {
    if let Some(quiet) = e.no_answer_within {
        return format!("no answer within {quiet:?}");
    }
    let mut lines = vec![match &e.status {
        Some(status) => format!("status {}", check_words(status)),
        None => "a successful status (below 400)".to_owned(),
    }];
    for (name, check) in &e.headers {
        lines.push(format!("header {name}: {}", check_words(check)));
    }
    for (path, check) in &e.json {
        lines.push(format!("JSON {path}: {}", check_words(check)));
    }
    if let Some(text) = &e.body_contains {
        lines.push(format!("body contains {text:?}"));
    }
    if let Some(within) = e.within {
        lines.push(format!("an answer within {within:?}"));
    }
    lines.join("\n")
}

fn exec_expected(x: &super::scenario::ExecExpect) -> String {
    let mut lines = vec![format!(
        "exit code {}",
        x.code.as_ref().map_or("0".to_owned(), check_words)
    )];
    if let Some(c) = &x.stdout {
        lines.push(format!("stdout {}", check_words(c)));
    }
    if let Some(c) = &x.stderr {
        lines.push(format!("stderr {}", check_words(c)));
    }
    lines.join("\n")
}

fn sql_expected(x: &super::scenario::SqlExpect) -> String {
    let mut lines = Vec::new();
    if let Some(state) = &x.sqlstate {
        lines.push(format!("fails with SQLSTATE {state}"));
    }
    if let Some(c) = &x.error {
        lines.push(format!("fails with an error {}", check_words(c)));
    }
    if let Some(c) = &x.rows {
        lines.push(format!("rows {}", check_words(c)));
    }
    if let Some(c) = &x.value {
        lines.push(format!("value {}", check_words(c)));
    }
    if lines.is_empty() {
        "the query succeeds".to_owned()
    } else {
        lines.join("\n")
    }
}

/// A JSON value by pointer ("/a/0") or simple path ("$.a[0].b").
fn json_at(json: &Value, path: &str) -> Result<Value, String> {
    let pointer = if let Some(rest) = path.strip_prefix('$') {
        let mut pointer = String::new();
        for part in rest.split(['.', '[']).filter(|p| !p.is_empty()) {
            pointer.push('/');
            pointer.push_str(part.trim_end_matches(']'));
        }
        pointer
    } else {
        path.to_owned()
    };
    json.pointer(&pointer)
        .cloned()
        .ok_or_else(|| format!("expected a value at {path}, there is none"))
}

/// A JSON value as text: strings without quotes.
fn quote_body(answer: &Answer) -> String {
    format!("\n  the response body: {}", cut(answer.body.trim()))
}

/// At most [`BODY_QUOTE`] bytes of `text`, on a character boundary.
pub fn cut(text: &str) -> String {
    if text.len() <= BODY_QUOTE {
        return text.to_owned();
    }
    let mut end = BODY_QUOTE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}
