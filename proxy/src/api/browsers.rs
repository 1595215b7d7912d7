//! Which requests a browser may make.
//!
//! Like Toxiproxy, the API refuses requests from browsers (a user agent
//! starting `Mozilla/`): a page on another site must not be able to switch
//! faults through its visitor's browser. The live page (`GET /ui`) is the
//! one exception, and it only reads. A browser may `GET` or `HEAD` when:
//!
//! - the browser says the request comes from a page of this same origin,
//!   or from the user (typed address, bookmark): `Sec-Fetch-Site` is
//!   `same-origin` or `none`. Every current browser sends it; a request
//!   without it, or `cross-site` / `same-site`, is refused, so another
//!   site's page cannot even make the browser send a reading request;
//! - and the address the browser was given (`Host`) is an IP address or
//!   `localhost`. A page of another site whose name was re-pointed at this
//!   API (DNS rebinding) would count as same-origin; its `Host` is that
//!   name, so it is refused.
//!
//! Every other method from a browser is refused as before.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};

use super::ApiError;

/// Why a browser's request is refused, or `None` if it is let through (or
/// does not come from a browser).
pub fn refusal(request: &Request) -> Option<ApiError> {
    let headers = request.headers();
    let from_browser = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    if !from_browser {
        return None;
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "User agent not allowed",
        ));
    }
    if !from_this_origin(headers) {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "User agent not allowed: a browser may only read, from a page of this API (Sec-Fetch-Site same-origin or none)",
        ));
    }
    if !addressed_by_ip_or_localhost(headers) {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "User agent not allowed: open the live page at an IP address or localhost (the Host header names another host)",
        ));
    }
    None
}

fn from_this_origin(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| matches!(site, "same-origin" | "none"))
}

fn addressed_by_ip_or_localhost(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        // [::1]:8474
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    let name = name.to_ascii_lowercase();
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, host: &str, site: Option<&str>) -> Request {
        let mut builder = Request::builder()
            .method(method)
            .uri("/proxies")
            .header(
                header::USER_AGENT,
                "Mozilla/5.0 (X11; Linux x86_64) Chrome/156",
            )
            .header(header::HOST, host);
        if let Some(site) = site {
            builder = builder.header("sec-fetch-site", site);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn a_browser_reads_from_the_page_itself_at_an_address() {
        for host in ["127.0.0.1:8474", "localhost:8474", "[::1]:8474", "10.0.0.5"] {
            assert!(
                refusal(&request("GET", host, Some("same-origin"))).is_none(),
                "{host}"
            );
        }
        assert!(refusal(&request("GET", "127.0.0.1:8474", Some("none"))).is_none());
    }

    #[test]
    fn a_browser_never_changes_anything_and_other_sites_are_kept_out() {
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            assert!(refusal(&request(method, "127.0.0.1:8474", Some("same-origin"))).is_some());
        }
        for site in [None, Some("cross-site"), Some("same-site")] {
            assert!(
                refusal(&request("GET", "127.0.0.1:8474", site)).is_some(),
                "{site:?}"
            );
        }
        // A re-pointed name (DNS rebinding) is same-origin to the browser.
        assert!(refusal(&request("GET", "evil.example:8474", Some("same-origin"))).is_some());
    }
}
