//! An httpbin (kennethreitz/httpbin) look-alike: the endpoints Istio's tasks call, with
//! the same JSON shapes, Title-Cased header names and content types.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::server::{respond, BoxFut, Handler, Req, Resp};

const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";
const MAX_DELAY_SECS: f64 = 10.0;

pub fn handler() -> Handler {
    Arc::new(|req: Req| -> BoxFut { Box::pin(route(req)) })
}

async fn route(req: Req) -> Resp {
    let path = req.path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => respond(StatusCode::OK, HTML, INDEX),
        ["headers"] => get_only(&req, || json_resp(json!({ "headers": headers(&req) }))),
        ["ip"] => get_only(&req, || json_resp(json!({ "origin": origin(&req) }))),
        ["user-agent"] => get_only(&req, || {
            json_resp(json!({ "user-agent": req.header("user-agent").unwrap_or("") }))
        }),
        ["get"] => get_only(&req, || {
            json_resp(json!({
                "args": args(&req),
                "headers": headers(&req),
                "origin": origin(&req),
                "url": url(&req),
            }))
        }),
        ["anything", ..] => json_resp(anything(&req, true)),
        ["status", codes] => status(codes),
        ["delay", secs] => delay(&req, secs).await,
        ["response-headers"] => response_headers(&req),
        _ => not_found(),
    }
}

fn get_only(req: &Req, f: impl FnOnce() -> Resp) -> Resp {
    if req.method == Method::GET || req.method == Method::HEAD {
        f()
    } else {
        method_not_allowed()
    }
}

/// Headers as httpbin shows them: werkzeug's Title-Case names, repeated values joined.
fn headers(req: &Req) -> Value {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &req.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(title_case(name.as_str()))
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    // HTTP/2 carries the authority as a pseudo-header; httpbin always shows `Host`.
    if !out.contains_key("Host") {
        if let Some(authority) = req.uri.authority() {
            out.insert("Host".to_string(), authority.to_string());
        }
    }
    Value::Object(
        out.into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

/// Python's `str.title()`, which werkzeug applies to header names: a letter is upper
/// case after a non-letter (so `x-b3-traceid` → `X-B3-Traceid`), lower case otherwise.
pub fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut prev_letter = false;
    for c in name.chars() {
        if c.is_alphabetic() {
            if prev_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_letter = true;
        } else {
            out.push(c);
            prev_letter = false;
        }
    }
    out
}

/// Query or form parameters: a single value as a string, repeated ones as a list.
fn multi_dict(pairs: Vec<(String, String)>) -> Value {
    let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        grouped.entry(k).or_default().push(v);
    }
    let map: Map<String, Value> = grouped
        .into_iter()
        .map(|(k, mut vs)| {
            let v = if vs.len() == 1 {
                Value::String(vs.remove(0))
            } else {
                json!(vs)
            };
            (k, v)
        })
        .collect();
    Value::Object(map)
}

fn args(req: &Req) -> Value {
    multi_dict(req.query_pairs())
}

fn origin(req: &Req) -> String {
    req.header("x-forwarded-for")
        .map(str::to_string)
        .unwrap_or_else(|| req.peer.ip().to_string())
}

fn url(req: &Req) -> String {
    let scheme = match req.header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    let host = req
        .header("host")
        .map(str::to_string)
        .or_else(|| req.uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let pq = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    format!("{scheme}://{host}{pq}")
}

/// `/anything`, and the body of `/delay`: everything httpbin knows about the request.
fn anything(req: &Req, with_method: bool) -> Value {
    let content_type = req
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let (form, data) = if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs = form_urlencoded::parse(&req.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        (multi_dict(pairs), String::new())
    } else {
        (json!({}), String::from_utf8_lossy(&req.body).into_owned())
    };
    let parsed = serde_json::from_str::<Value>(&data).unwrap_or(Value::Null);
    let mut out = json!({
        "args": args(req),
        "data": data,
        "files": {},
        "form": form,
        "headers": headers(req),
        "json": parsed,
        "origin": origin(req),
        "url": url(req),
    });
    if with_method {
        out["method"] = Value::String(req.method.to_string());
    }
    out
}

/// `/status/418`, `/status/200,500` (uniform) or `/status/200:0.9,500:0.1` (weighted).
fn status(spec: &str) -> Resp {
    let mut choices: Vec<(u16, f64)> = Vec::new();
    for part in spec.split(',') {
        let (code, weight) = match part.split_once(':') {
            Some((c, w)) => (c, w.trim().parse::<f64>().ok()),
            None => (part, Some(1.0)),
        };
        match (code.trim().parse::<u16>(), weight) {
            (Ok(c), Some(w)) if (100..=599).contains(&c) && w >= 0.0 => choices.push((c, w)),
            _ => return respond(StatusCode::BAD_REQUEST, HTML, "Invalid status code"),
        }
    }
    let total: f64 = choices.iter().map(|(_, w)| w).sum();
    let mut pick = rand::random::<f64>() * total;
    let mut code = choices[0].0;
    for (c, w) in &choices {
        if pick < *w {
            code = *c;
            break;
        }
        pick -= w;
    }
    status_response(code)
}

fn status_response(code: u16) -> Resp {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match code {
        418 => respond(status, "text/plain", TEAPOT),
        406 => json_resp_status(
            status,
            json!({
                "message": "Client did not request a supported media type.",
                "accept": ["image/webp", "image/svg+xml", "image/jpeg", "image/png", "image/*"],
            }),
        ),
        _ => respond(status, HTML, ""),
    };
    let extra: &[(&str, &str)] = match code {
        301 | 302 | 303 | 305 | 307 => &[("location", "/redirect/1")],
        401 => &[("www-authenticate", "Basic realm=\"Fake Realm\"")],
        407 => &[("proxy-authenticate", "Basic realm=\"Fake Realm\"")],
        _ => &[],
    };
    for (k, v) in extra {
        resp.headers_mut().insert(*k, HeaderValue::from_static(v));
    }
    resp
}

async fn delay(req: &Req, secs: &str) -> Resp {
    let Ok(secs) = secs.parse::<f64>() else {
        return not_found();
    };
    if !secs.is_finite() || secs < 0.0 {
        return not_found();
    }
    tokio::time::sleep(Duration::from_secs_f64(secs.min(MAX_DELAY_SECS))).await;
    json_resp(anything(req, false))
}

/// `/response-headers?k=v`: sets every query parameter as a response header and echoes
/// them, `Content-Length` included, as httpbin does.
fn response_headers(req: &Req) -> Resp {
    let pairs = req.query_pairs();
    let mut echoed = match multi_dict(pairs.clone()) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    echoed.insert("Content-Type".into(), Value::String(JSON.into()));
    // The body states its own length, so iterate until the number stops changing.
    let mut body = String::new();
    let mut len = 0usize;
    for _ in 0..5 {
        echoed.insert("Content-Length".into(), Value::String(len.to_string()));
        body = pretty(&Value::Object(echoed.clone()));
        if body.len() == len {
            break;
        }
        len = body.len();
    }
    let mut resp = respond(StatusCode::OK, JSON, body);
    for (k, v) in pairs {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            if name != http::header::CONTENT_LENGTH {
                resp.headers_mut().append(name, value);
            }
        }
    }
    resp
}

/// httpbin's (Flask's) rendering: two-space indent, sorted keys, trailing newline.
pub fn pretty(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(&sorted(value)).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let ordered: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn json_resp(value: Value) -> Resp {
    json_resp_status(StatusCode::OK, value)
}

fn json_resp_status(status: StatusCode, value: Value) -> Resp {
    respond(status, JSON, pretty(&value))
}

fn not_found() -> Resp {
    respond(StatusCode::NOT_FOUND, HTML, NOT_FOUND)
}

fn method_not_allowed() -> Resp {
    respond(StatusCode::METHOD_NOT_ALLOWED, HTML, METHOD_NOT_ALLOWED)
}

const NOT_FOUND: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. Check the path and try again.</p>\n";

const METHOD_NOT_ALLOWED: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n";

const TEAPOT: &str = "\n    -=[ teapot ]=-\n\n       _...._\n     .'  _ _ `.\n    | .\"` ^ `\". _,\n    \\_;`\"---\"`|//\n      |       ;/\n      \\_     _/\n        `\"\"\"`\n";

const INDEX: &str = r#"<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>httpbin (ironmesh-sample)</title>
</head>
<body>
<h1>httpbin</h1>
<p>A simple HTTP request and response service (ironmesh-sample).</p>
<ul>
<li><a href="/headers">/headers</a> the request's headers</li>
<li><a href="/get">/get</a> the request's query arguments, headers, origin and URL</li>
<li><a href="/ip">/ip</a> the caller's address</li>
<li><a href="/user-agent">/user-agent</a> the User-Agent header</li>
<li><a href="/anything">/anything</a> everything about the request, any method</li>
<li><a href="/status/418">/status/{code}</a> answers with that status (or one of <code>200,500</code>)</li>
<li><a href="/delay/1">/delay/{seconds}</a> answers after a delay (at most 10 s)</li>
<li><a href="/response-headers?freeform=">/response-headers?k=v</a> sets response headers</li>
</ul>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_case_matches_werkzeug() {
        assert_eq!(title_case("x-b3-traceid"), "X-B3-Traceid");
        assert_eq!(title_case("user-agent"), "User-Agent");
        assert_eq!(
            title_case("x-forwarded-client-cert"),
            "X-Forwarded-Client-Cert"
        );
        assert_eq!(title_case("x-b3spanid"), "X-B3Spanid");
    }
}
