//! Who may ask what: the token, the loopback `Host` rule and the
//! cross-site check on writes (see the module doc of `http`).

use std::path::Path;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::{ApiError, Web};

/// Reads the token from `file` (surrounding whitespace trimmed); `None`
/// when no file is configured. An empty or unreadable file is an error.
pub(super) fn load_token(file: &Path) -> anyhow::Result<Option<String>> {
    if file.as_os_str().is_empty() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "cannot read http.token_file {}; create it (one line, the token) or unset it",
            file.display()
        )
    })?;
    let token = text.trim();
    if token.is_empty() {
        anyhow::bail!(
            "http.token_file {} is empty; write a secret token into it",
            file.display()
        );
    }
    Ok(Some(token.to_owned()))
}

/// The middleware: refuses a request that lacks the token, names a foreign
/// host on an open loopback server, or writes from another site.
pub(super) async fn check(State(web): State<Web>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    // Health checks carry no secrets and are made by probes without one.
    let open = request.uri().path() == "/healthz";
    match &web.token {
        Some(token) if !open && !carries(headers, token) => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this server needs its access token",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"quire\", charset=\"UTF-8\""),
            );
            return response;
        }
        Some(_) => {}
        None if !loopback_host(headers) => {
            return ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "this server answers only to localhost; set http.token_file to reach it by \
                 another name",
            )
            .into_response();
        }
        None => {}
    }
    if request.method() != Method::GET
        && request.method() != Method::HEAD
        && !bearer(headers, web.token.as_deref())
        && cross_site(headers)
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "a write from another site is refused; use this server's own pages, or send the \
             token as Authorization: Bearer",
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether the request carries `token`, as a bearer token or as the
/// password of basic auth.
fn carries(headers: &HeaderMap, token: &str) -> bool {
    if bearer(headers, Some(token)) {
        return true;
    }
    let Some(encoded) = authorization(headers).and_then(|a| a.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let decoded = String::from_utf8_lossy(&decoded);
    decoded
        .split_once(':')
        .is_some_and(|(_, password)| same(password, token))
}

/// Whether the request carries `token` as `Authorization: Bearer`, which a
/// browser never adds by itself (so it also proves the write is meant).
fn bearer(headers: &HeaderMap, token: Option<&str>) -> bool {
    let Some(token) = token else { return false };
    authorization(headers)
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.trim(), token))
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()
}

/// Compares in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether `Host` names this machine: localhost or a loopback address.
/// A request without one (HTTP/1.0 tools) is let through.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a browser says the request comes from another site: by
/// `Sec-Fetch-Site`, or by an `Origin` whose host is not `Host`. Clients
/// that send neither (curl, scripts) are not browsers acting for a visitor.
fn cross_site(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match value("origin") {
        None => false,
        Some(origin) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            Some(origin_host) != value("host")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_token_comes_as_bearer_or_basic_password() {
        let token = "s3cret";
        assert!(carries(
            &headers(&[("authorization", "Bearer s3cret")]),
            token
        ));
        // "any:s3cret"
        assert!(carries(
            &headers(&[("authorization", "Basic YW55OnMzY3JldA==")]),
            token
        ));
        assert!(!carries(
            &headers(&[("authorization", "Bearer s3cre")]),
            token
        ));
        assert!(!carries(
            &headers(&[("authorization", "Basic YW55OnMzY3JldHg=")]),
            token
        ));
        assert!(!carries(&headers(&[]), token));
    }

    #[test]
    fn only_loopback_names_reach_an_open_server() {
        for ok in [
            "localhost:8484",
            "127.0.0.1:8484",
            "[::1]:8484",
            "127.0.0.2",
            "LOCALHOST",
        ] {
            assert!(loopback_host(&headers(&[("host", ok)])), "{ok}");
        }
        for bad in [
            "evil.example:8484",
            "10.0.0.1:8484",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(&headers(&[("host", bad)])), "{bad}");
        }
    }

    #[test]
    fn writes_from_another_site_are_told_apart() {
        let host = ("host", "127.0.0.1:8484");
        assert!(!cross_site(&headers(&[host])));
        assert!(!cross_site(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8484")
        ])));
        assert!(cross_site(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(cross_site(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!cross_site(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
    }
}
