//! Which of a step's strings are expanded when it runs (every string it
//! sends or checks), so that checking a scenario finds each `${VAR}` in
//! them. Names are taken as written, so they are not visited.

use crate::runner::vars::Strings;

use super::kinds::{Action, Check, ExecStep, FaultOperation, FaultStep, HttpStep, SqlStep};

impl Strings for Action {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        match self {
            Self::Fault(f) => f.each_string(each),
            Self::Http(h) => h.each_string(each),
            Self::WaitUntil(w) => w.check.each_string(each),
            Self::Sleep(_) => {}
            Self::Exec(e) => e.each_string(each),
            Self::Tcp(t) => t.address.each_string(each),
            Self::Sql(s) => s.each_string(each),
            Self::Capture(c) => c.from.each_string(each),
            Self::Holds(h) => h.check.each_string(each),
        }
    }
}

/// The proxy is a name under `[proxies]`, taken as written.
impl Strings for FaultStep {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        match &self.operation {
            FaultOperation::Add(toxic) => toxic.each_string(each),
            FaultOperation::Remove(name) => name.each_string(each),
            FaultOperation::Replace(chain) => chain.each_string(each),
            FaultOperation::Clear | FaultOperation::Enabled(_) | FaultOperation::Bounce(_) => {}
        }
    }
}

/// The method and the header names are taken as written.
impl Strings for HttpStep {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        self.url.each_string(each);
        self.headers.each_string(each);
        self.json.each_string(each);
        self.body.each_string(each);
        let e = &self.expect;
        e.status.each_string(each);
        e.headers.each_string(each);
        e.json.each_string(each);
        e.body_contains.each_string(each);
    }
}

impl Strings for ExecStep {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        self.command.each_string(each);
        let e = &self.expect;
        e.code.each_string(each);
        e.stdout.each_string(each);
        e.stderr.each_string(each);
    }
}

/// The expected SQLSTATE is a code, taken as written.
impl Strings for SqlStep {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        self.connect.each_string(each);
        self.query.each_string(each);
        self.expect.value.each_string(each);
        self.expect.rows.each_string(each);
        self.expect.error.each_string(each);
    }
}

impl Strings for Check {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        if let Self::Text(text) = self {
            each(text);
        }
    }
}
