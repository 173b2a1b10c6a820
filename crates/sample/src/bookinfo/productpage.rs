//! productpage: the HTML front end that calls details and reviews, as bookinfo's does —
//! 3 s timeouts, reviews tried twice, upstream failures shown in the page.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};

use super::{forward_headers, service_base, Upstream};
use crate::server::{respond, BoxFut, Handler, Req, Resp};

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";
const TIMEOUT: Duration = Duration::from_secs(3);

const DETAILS_ERROR: &str = "Sorry, product details are currently unavailable for this book.";
const REVIEWS_ERROR: &str = "Sorry, product reviews are currently unavailable for this book.";
const RATINGS_ERROR: &str = "Sorry, product ratings are currently unavailable for this book.";

struct Upstreams {
    client: Upstream,
    details: String,
    reviews: String,
    ratings: String,
}

pub fn handler() -> Handler {
    let ups = Arc::new(Upstreams {
        client: Upstream::new(),
        details: service_base("details"),
        reviews: service_base("reviews"),
        ratings: service_base("ratings"),
    });
    Arc::new(move |req: Req| -> BoxFut {
        let ups = ups.clone();
        Box::pin(async move { route(&req, &ups).await })
    })
}

async fn route(req: &Req, ups: &Upstreams) -> Resp {
    let path = req.path();
    let api: Vec<&str> = path
        .trim_start_matches("/api/v1/products")
        .split('/')
        .collect();
    match path {
        "/" | "/index.html" => respond(StatusCode::OK, HTML, INDEX),
        "/health" => respond(StatusCode::OK, HTML, "Product page is healthy"),
        "/login" if req.method == Method::POST => login(req),
        "/logout" => logout(req),
        "/productpage" => product_page(req, ups).await,
        "/api/v1/products" => respond(StatusCode::OK, JSON, products().to_string()),
        p if p.starts_with("/api/v1/products/") => {
            let headers = outbound_headers(req);
            let (status, body) = match api.as_slice() {
                ["", id] => details(ups, id, &headers).await,
                ["", id, "reviews"] => reviews(ups, id, &headers).await,
                ["", id, "ratings"] => ratings(ups, id, &headers).await,
                _ => return not_found(),
            };
            respond(status, JSON, body.to_string())
        }
        _ => not_found(),
    }
}

fn not_found() -> Resp {
    respond(StatusCode::NOT_FOUND, HTML, "<h1>Not Found</h1>\n")
}

/// The signed-in user (bookinfo keeps it in a cookie named `user`).
fn cookie_user(req: &Req) -> Option<String> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("user="))
        .find(|u| !u.is_empty())
        .map(str::to_string)
}

/// The propagated headers plus `end-user` for a signed-in user: Istio's request-routing
/// task matches `end-user: jason` to send that user to reviews v2.
fn outbound_headers(req: &Req) -> HeaderMap {
    let mut headers = forward_headers(req);
    if !headers.contains_key("end-user") {
        if let Some(v) = cookie_user(req).and_then(|u| HeaderValue::from_str(&u).ok()) {
            headers.insert("end-user", v);
        }
    }
    headers
}

fn redirect_back(req: &Req) -> Resp {
    let target = req.header("referer").unwrap_or("/productpage");
    let mut resp = respond(StatusCode::FOUND, HTML, "");
    if let Ok(v) = HeaderValue::from_str(target) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp
}

fn login(req: &Req) -> Resp {
    let user = form_urlencoded::parse(&req.body)
        .find(|(k, _)| k == "username")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut resp = redirect_back(req);
    let cookie = format!("user={}; Path=/", user.replace([';', ',', ' '], ""));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    resp
}

fn logout(req: &Req) -> Resp {
    let mut resp = redirect_back(req);
    resp.headers_mut().insert(
        http::header::SET_COOKIE,
        HeaderValue::from_static("user=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"),
    );
    resp
}

fn products() -> Value {
    json!([{
        "id": 0,
        "title": "The Comedy of Errors",
        "descriptionHtml": "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.",
    }])
}

/// One upstream call as the page sees it: the status (500 when nothing answered) and
/// the body, or bookinfo's apology.
async fn fetch(
    ups: &Upstreams,
    url: &str,
    headers: &HeaderMap,
    attempts: u32,
    apology: &str,
) -> (StatusCode, Value) {
    let mut status = StatusCode::INTERNAL_SERVER_ERROR;
    for _ in 0..attempts {
        match ups.client.get_json(url, headers, TIMEOUT).await {
            Ok(f) if f.status == StatusCode::OK && f.json.is_some() => {
                return (StatusCode::OK, f.json.unwrap_or(Value::Null));
            }
            Ok(f) => {
                eprintln!("Error: GET {url} answered {}", f.status.as_u16());
                status = f.status;
            }
            Err(e) => {
                eprintln!("Error: {e}");
                status = StatusCode::INTERNAL_SERVER_ERROR;
            }
        }
    }
    (status, json!({ "error": apology }))
}

async fn details(ups: &Upstreams, id: &str, headers: &HeaderMap) -> (StatusCode, Value) {
    let url = format!("{}/details/{id}", ups.details);
    fetch(ups, &url, headers, 1, DETAILS_ERROR).await
}

/// Tried twice, as the real productpage does (Istio's fault-injection task relies on
/// the resulting 6 s worst case).
async fn reviews(ups: &Upstreams, id: &str, headers: &HeaderMap) -> (StatusCode, Value) {
    let url = format!("{}/reviews/{id}", ups.reviews);
    fetch(ups, &url, headers, 2, REVIEWS_ERROR).await
}

async fn ratings(ups: &Upstreams, id: &str, headers: &HeaderMap) -> (StatusCode, Value) {
    let url = format!("{}/ratings/{id}", ups.ratings);
    fetch(ups, &url, headers, 1, RATINGS_ERROR).await
}

async fn product_page(req: &Req, ups: &Upstreams) -> Resp {
    let headers = outbound_headers(req);
    let user = cookie_user(req);
    let (details_status, details) = details(ups, "0", &headers).await;
    let (reviews_status, reviews) = reviews(ups, "0", &headers).await;
    let page = render(
        user.as_deref(),
        &products()[0],
        (details_status, &details),
        (reviews_status, &reviews),
    );
    respond(StatusCode::OK, HTML, page)
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => esc(s),
        Some(Value::Null) | None => String::new(),
        Some(other) => esc(&other.to_string()),
    }
}

fn render(
    user: Option<&str>,
    product: &Value,
    (details_status, details): (StatusCode, &Value),
    (reviews_status, reviews): (StatusCode, &Value),
) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Simple Bookstore App</title>\n</head>\n<body>\n");
    h.push_str("<nav><a href=\"#\">BookInfo Sample</a>\n");
    match user {
        Some(u) => {
            let _ = writeln!(h, "<p class=\"user\">{}</p> <a href=\"logout\">Sign out</a>", esc(u));
        }
        None => h.push_str("<form method=\"post\" action=\"login\" name=\"login_form\"><input name=\"username\" placeholder=\"Username\"><input name=\"passwd\" type=\"password\" placeholder=\"Password\"><button type=\"submit\">Sign in</button></form>\n"),
    }
    h.push_str("</nav>\n");
    let _ = writeln!(h, "<h1>{}</h1>", text(product, "title"));
    // The description is trusted HTML from the product list, as in the real template.
    let _ = writeln!(
        h,
        "<p>{}</p>",
        product
            .get("descriptionHtml")
            .and_then(Value::as_str)
            .unwrap_or("")
    );

    h.push_str("<div class=\"details\">\n");
    if details_status == StatusCode::OK {
        h.push_str("<h4>Book Details</h4>\n<dl>\n");
        for (label, key) in [
            ("Type:", "type"),
            ("Pages:", "pages"),
            ("Publisher:", "publisher"),
            ("Language:", "language"),
            ("ISBN-10:", "ISBN-10"),
            ("ISBN-13:", "ISBN-13"),
        ] {
            let _ = writeln!(h, "<dt>{label}</dt><dd>{}</dd>", text(details, key));
        }
        h.push_str("</dl>\n");
    } else {
        h.push_str("<h4>Error fetching product details!</h4>\n");
        let _ = writeln!(h, "<p>{}</p>", text(details, "error"));
    }
    h.push_str("</div>\n<div class=\"reviews\">\n");
    if reviews_status == StatusCode::OK {
        h.push_str("<h4>Book Reviews</h4>\n");
        let empty = Vec::new();
        let list = reviews
            .get("reviews")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        for review in list {
            render_review(&mut h, review, reviews);
        }
    } else {
        h.push_str("<h4>Error fetching product reviews!</h4>\n");
        let _ = writeln!(h, "<p>{}</p>", text(reviews, "error"));
    }
    h.push_str("</div>\n</body>\n</html>\n");
    h
}

fn render_review(h: &mut String, review: &Value, reviews: &Value) {
    h.push_str("<blockquote>\n");
    let _ = writeln!(h, "<p>{}</p>", text(review, "text"));
    let _ = writeln!(h, "<small>{}</small>", text(review, "reviewer"));
    if let Some(rating) = review.get("rating") {
        if let Some(stars) = rating.get("stars").and_then(Value::as_u64) {
            let stars = stars.min(5);
            let _ = writeln!(h, "<font color=\"{}\">", text(rating, "color"));
            for _ in 0..stars {
                h.push_str("<span class=\"glyphicon glyphicon-star\"></span>\n");
            }
            for _ in stars..5 {
                h.push_str("<span class=\"glyphicon glyphicon-star-empty\"></span>\n");
            }
            h.push_str("</font>\n");
        } else if rating.get("error").is_some() {
            let _ = writeln!(h, "<p><i>{}</i></p>", text(rating, "error"));
        }
    }
    let _ = write!(
        h,
        "<dl><dt>Reviews served by:</dt><dd><u>{}</u>",
        text(reviews, "podname")
    );
    let cluster = text(reviews, "clustername");
    if !cluster.is_empty() && cluster != "null" {
        let _ = write!(h, " on cluster <u>{cluster}</u>");
    }
    h.push_str("</dd></dl>\n</blockquote>\n");
}

const INDEX: &str = r#"<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>Simple Bookstore App</title>
</head>
<body>
<h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
<table>
<tr><th>name</th><td>http://details:9080</td></tr>
<tr><th>endpoint</th><td>details</td></tr>
<tr><th>children</th><td>details, reviews (which calls ratings)</td></tr>
</table>
<p>Click on one of the links below to auto generate a request to the backend as a real user or a tester</p>
<p><a href="/productpage?u=normal">Normal user</a></p>
<p><a href="/productpage?u=test">Test user</a></p>
</body>
</html>
"#;
