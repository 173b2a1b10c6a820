//! The `static` role: what a stock `nginx` image serves — the 615-byte welcome page for
//! `/` and `/index.html`, nginx's own error pages otherwise, `Server: nginx`.

use std::sync::Arc;

use http::{HeaderValue, Method, StatusCode};

use crate::server::{respond, BoxFut, Handler, Req, Resp};

pub const WELCOME: &str = include_str!("welcome.html");

/// A fixed validator: the page never changes, so neither does its ETag.
const LAST_MODIFIED: &str = "Tue, 15 Apr 2025 12:00:00 GMT";
const ETAG: &str = "\"67fe4a80-267\"";

pub fn handler() -> Handler {
    Arc::new(|req: Req| -> BoxFut { Box::pin(async move { route(&req) }) })
}

fn route(req: &Req) -> Resp {
    let is_page = matches!(req.path(), "/" | "/index.html");
    let mut resp = if !is_page {
        error_page(StatusCode::NOT_FOUND)
    } else if req.method != Method::GET && req.method != Method::HEAD {
        error_page(StatusCode::METHOD_NOT_ALLOWED)
    } else if req.header("if-none-match") == Some(ETAG) {
        let mut r = respond(StatusCode::NOT_MODIFIED, "text/html", "");
        r.headers_mut().remove(http::header::CONTENT_TYPE);
        r.headers_mut()
            .insert("etag", HeaderValue::from_static(ETAG));
        r
    } else {
        let mut r = respond(StatusCode::OK, "text/html", WELCOME);
        let h = r.headers_mut();
        h.insert("last-modified", HeaderValue::from_static(LAST_MODIFIED));
        h.insert("etag", HeaderValue::from_static(ETAG));
        h.insert("accept-ranges", HeaderValue::from_static("bytes"));
        r
    };
    resp.headers_mut()
        .insert("server", HeaderValue::from_static("nginx"));
    resp
}

fn error_page(status: StatusCode) -> Resp {
    let title = match status {
        StatusCode::METHOD_NOT_ALLOWED => "405 Not Allowed".to_string(),
        s => format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or("")),
    };
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    respond(status, "text/html", body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn welcome_page_is_nginx_size() {
        assert_eq!(super::WELCOME.len(), 615);
    }
}
