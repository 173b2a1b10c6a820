//! The request matrix: each case is one request (repeated) and what Istio's semantics
//! say must come back. The expectations are checked against real Envoy, so the matrix
//! itself is proven before ironmesh-proxy is compared with it.

/// A fact about one answer.
#[derive(Debug, Clone, Copy)]
pub enum Fact {
    Status(u16),
    /// The echo backend that answered.
    Backend(&'static str),
    /// The answer came from the proxy itself (no backend).
    NotEcho,
    /// The path (with query) the backend received.
    Path(&'static str),
    /// The `Host` the backend received.
    Host(&'static str),
    /// Every value of a request header the backend received (empty: absent).
    ReqHeader(&'static str, &'static [&'static str]),
    /// A response header's value (`None`: absent).
    RespHeader(&'static str, Option<&'static str>),
    Body(&'static str),
    /// Share of answers per backend, for weighted routes.
    Split(&'static [(&'static str, f64)]),
    /// Answers may differ between repetitions (a retry shows in the upstream's
    /// `x-envoy-attempt-count`; without retries some requests fail): the set of distinct
    /// answers is what is compared with Envoy's.
    Varies,
    /// Some request took this many attempts (the upstream's `x-envoy-attempt-count`).
    SomeAttempt(&'static str),
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub method: &'static str,
    pub host: &'static str,
    pub path: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    /// How many times the request is sent.
    pub repeat: usize,
    pub facts: &'static [Fact],
}

const fn get(
    name: &'static str,
    host: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    facts: &'static [Fact],
) -> Case {
    Case {
        name,
        method: "GET",
        host,
        path,
        headers,
        repeat: 3,
        facts,
    }
}

use Fact::*;

const M: &str = "match.example.com";
const W: &str = "weights.example.com";
const RW: &str = "rewrite.example.com";
const RD: &str = "redirect.example.com";
const D: &str = "direct.example.com";
const H: &str = "headers.example.com";
const RT: &str = "retry.example.com";

/// Requests sent for a weighted split: with p = 0.5 the standard deviation of one
/// backend's count is 10, and the tolerance below is 4 of them.
pub const SPLIT_REQUESTS: usize = 400;
/// Allowed distance of an observed share from the configured weight.
pub const SPLIT_TOLERANCE: f64 = 0.10;

pub fn all() -> Vec<Case> {
    vec![
        get(
            "uri exact",
            M,
            "/exact",
            &[],
            &[Status(200), Backend("v1"), Path("/exact"), Host(M)],
        ),
        get(
            "uri exact does not match a longer path",
            M,
            "/exact/more",
            &[],
            &[Status(404), NotEcho],
        ),
        get(
            "uri regex",
            M,
            "/re/123",
            &[],
            &[Status(200), Backend("other"), Path("/re/123")],
        ),
        get(
            "uri regex is anchored",
            M,
            "/re/123x",
            &[],
            &[Status(404), NotEcho],
        ),
        get(
            "header exact",
            M,
            "/any",
            &[("x-user", "alice")],
            &[Status(200), Backend("v2")],
        ),
        get(
            "header exact, other value",
            M,
            "/any",
            &[("x-user", "alicia")],
            &[Status(404), NotEcho],
        ),
        get(
            "header prefix and uri prefix",
            M,
            "/team/a",
            &[("x-team", "engineering")],
            &[Status(200), Backend("other")],
        ),
        get(
            "header prefix without the uri",
            M,
            "/x",
            &[("x-team", "engineering")],
            &[Status(404)],
        ),
        get(
            "header regex",
            M,
            "/tier",
            &[("x-tier", "silver")],
            &[Status(200), Backend("v1")],
        ),
        get(
            "header regex is anchored",
            M,
            "/tier",
            &[("x-tier", "golden")],
            &[Status(404)],
        ),
        get(
            "query exact",
            M,
            "/search?q=yes&x=1",
            &[],
            &[Status(200), Backend("other"), Path("/search?q=yes&x=1")],
        ),
        get("query other value", M, "/search?q=no", &[], &[Status(404)]),
        Case {
            method: "POST",
            ..get("method", M, "/any", &[], &[Status(200), Backend("v2")])
        },
        get(
            "uri prefix",
            M,
            "/prefix/deeper",
            &[],
            &[Status(200), Backend("v2"), Path("/prefix/deeper")],
        ),
        get(
            "host without a VirtualService",
            "nothing.example.com",
            "/exact",
            &[],
            &[Status(404), NotEcho],
        ),
        get(
            "host outside the Gateway's hosts",
            "example.org",
            "/exact",
            &[],
            &[Status(404), NotEcho],
        ),
        Case {
            repeat: 20,
            ..get(
                "weight 100/0",
                W,
                "/all-v1",
                &[],
                &[Status(200), Backend("v1")],
            )
        },
        Case {
            repeat: SPLIT_REQUESTS,
            ..get(
                "weight 50/50",
                W,
                "/",
                &[],
                &[Status(200), Split(&[("v1", 0.5), ("v2", 0.5)])],
            )
        },
        get(
            "prefix rewrite",
            RW,
            "/old/thing?a=b",
            &[],
            &[Status(200), Backend("v1"), Path("/new/thing?a=b"), Host(RW)],
        ),
        get(
            "regex rewrite",
            RW,
            "/re/abc/rest",
            &[],
            &[Status(200), Path("/rest/abc")],
        ),
        get(
            "authority rewrite",
            RW,
            "/authority",
            &[],
            &[
                Status(200),
                Path("/authority"),
                Host("rewritten.example.com"),
            ],
        ),
        get(
            "redirect uri and authority",
            RD,
            "/moved",
            &[],
            &[
                Status(301),
                NotEcho,
                RespHeader("location", Some("http://elsewhere.example.com/new-home")),
            ],
        ),
        get(
            "redirect code 308",
            RD,
            "/perm/x",
            &[],
            &[
                Status(308),
                NotEcho,
                RespHeader("location", Some("http://redirect.example.com/permanent")),
            ],
        ),
        get(
            "redirect scheme",
            RD,
            "/secure/x",
            &[],
            &[
                Status(301),
                NotEcho,
                RespHeader("location", Some("https://redirect.example.com/secure/x")),
            ],
        ),
        get(
            "direct response with body",
            D,
            "/teapot",
            &[],
            &[Status(418), NotEcho, Body("short and stout")],
        ),
        get(
            "direct response without body",
            D,
            "/empty",
            &[],
            &[Status(204), NotEcho, Body("")],
        ),
        get(
            "header operations",
            H,
            "/h",
            &[
                ("x-remove-me", "gone"),
                ("x-add", "original"),
                ("x-set", "client"),
            ],
            &[
                Status(200),
                Backend("v1"),
                ReqHeader("x-set", &["set-value"]),
                ReqHeader("x-add", &["original", "added"]),
                ReqHeader("x-remove-me", &[]),
                ReqHeader("x-dest", &["v1-only"]),
                RespHeader("x-resp-set", Some("resp-set")),
                RespHeader("x-resp-add", Some("resp-added")),
                RespHeader("x-echo-drop", None),
            ],
        ),
        // Round robin over a live and a dead endpoint: the default policy retries the
        // failed connects on the live host (`previous_hosts`).
        Case {
            repeat: 20,
            ..get(
                "retry: mesh default policy",
                RT,
                "/default",
                &[],
                &[Status(200), Backend("v2"), Varies, SomeAttempt("2")],
            )
        },
        Case {
            repeat: 20,
            ..get(
                "retry: attempts 0",
                RT,
                "/none",
                &[],
                &[Varies, Split(&[("v2", 0.5), ("-", 0.5)])],
            )
        },
        get(
            "retry: retriable status exhausted",
            RT,
            "/status/503",
            &[],
            &[Status(503), Backend("other"), SomeAttempt("3")],
        ),
        get(
            "retry: every attempt fails to connect",
            RT,
            "/anything",
            &[],
            &[Status(503), NotEcho],
        ),
    ]
}
