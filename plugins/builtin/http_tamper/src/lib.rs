//! `http_tamper`: the upstream's answer to a matching request reaches the
//! client altered: its status changed, headers set or removed, its body
//! replaced, and everything else as the upstream sent it. It acts on the
//! response whichever stream it is attached to (there is nothing to tamper
//! with before the upstream answers). The edits go through the contract's
//! `http-host` import, since an action can only pass a response whole or
//! replace it whole.

use faultgate_guest::http::{
    Action, HttpExchange, HttpFault, RequestHead, RequestMatch, ResponseHead, host,
};
use faultgate_guest::{Attrs, ConnInfo, Description, attribute};

struct Tamper {
    when: RequestMatch,
    matched: bool,
    status: Option<u16>,
    set_headers: Vec<(String, String)>,
    remove_headers: Vec<String>,
    body: Option<Vec<u8>>,
}

/// The two headers that follow the body, which the host sets.
const HOST_SET: [&str; 2] = ["content-length", "transfer-encoding"];

fn header_name(attribute: &str, name: &str) -> Result<String, String> {
    let name = name.trim();
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("{attribute}: {name:?} is not a header name"));
    }
    let lower = name.to_ascii_lowercase();
    if HOST_SET.contains(&lower.as_str()) {
        return Err(format!(
            "{attribute}: {lower} follows the body and cannot be set or removed"
        ));
    }
    Ok(lower)
}

/// `set_headers`: one "Name: value" per line.
fn parse_set_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                format!("set_headers: expected \"Name: value\" on each line, got {line:?}")
            })?;
            let value = value.trim();
            if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                return Err(format!(
                    "set_headers: the value of {:?} has a control character",
                    name.trim()
                ));
            }
            Ok((header_name("set_headers", name)?, value.to_owned()))
        })
        .collect()
}

impl HttpFault for Tamper {
    fn describe() -> Description {
        RequestMatch::describe(
            Description::new(
                "http_tamper",
                "Alters the upstream's answer to matching requests: status, headers, body",
            )
            .version(env!("CARGO_PKG_VERSION"))
            .streams(&[faultgate_guest::Direction::Upstream, faultgate_guest::Direction::Downstream])
            .attribute(attribute::integer(
                "status",
                0,
                "the status the client gets instead of the upstream's (100-999; 0: unchanged)",
            ))
            .attribute(attribute::text(
                "set_headers",
                "",
                "headers set on the response, one \"Name: value\" per line (replacing the upstream's)",
            ))
            .attribute(attribute::text(
                "remove_headers",
                "",
                "headers removed from the response, comma-separated names",
            ))
            .attribute(attribute::text(
                "body",
                "",
                "a body sent in place of the upstream's (empty: the upstream's passes)",
            ))
            .attribute(attribute::boolean(
                "empty_body",
                false,
                "send an empty body in place of the upstream's",
            )),
        )
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        let status = match attrs.int("status", 0)? {
            0 => None,
            code @ 100..=999 => Some(code as u16),
            code => {
                return Err(format!(
                    "status: expected an HTTP status (100-999), or 0 to keep the upstream's, got {code}"
                ));
            }
        };
        let set_headers = parse_set_headers(&attrs.text("set_headers", "")?)?;
        let remove_headers = attrs
            .text("remove_headers", "")?
            .split(',')
            .filter(|name| !name.trim().is_empty())
            .map(|name| header_name("remove_headers", name))
            .collect::<Result<Vec<_>, _>>()?;
        let body = attrs.text("body", "")?;
        let empty_body = attrs.boolean("empty_body", false)?;
        if empty_body && !body.is_empty() {
            return Err("body: given together with empty_body; give one of them".into());
        }
        let body = if empty_body {
            Some(Vec::new())
        } else {
            (!body.is_empty()).then(|| body.into_bytes())
        };
        if status.is_none() && set_headers.is_empty() && remove_headers.is_empty() && body.is_none()
        {
            return Err(
                "status, set_headers, remove_headers, body, empty_body: none given, so nothing would change"
                    .into(),
            );
        }
        Ok(Self {
            when: RequestMatch::from_attrs(attrs)?,
            matched: false,
            status,
            set_headers,
            remove_headers,
            body,
        })
    }
}

impl HttpExchange for Tamper {
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
        self.matched = self.when.matches(request);
        Vec::new()
    }

    fn on_response(&mut self, _response: &ResponseHead) -> Vec<Action> {
        if !self.matched {
            return Vec::new();
        }
        if let Some(status) = self.status {
            host::set_response_status(status);
        }
        for name in &self.remove_headers {
            host::remove_response_header(name);
        }
        for (name, value) in &self.set_headers {
            host::set_response_header(name, value);
        }
        if let Some(body) = &self.body {
            host::replace_response_body(body);
        }
        Vec::new()
    }
}

faultgate_guest::export_http_fault!(Tamper);
