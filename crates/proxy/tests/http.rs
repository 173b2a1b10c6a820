//! HTTP through the real binary: protocols, routing, route actions, local replies.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

const BIND: &[&str] = &["--bind-port", "8080=127.0.0.1:0"];

fn gateway(
    vhosts: serde_json::Value,
    clusters: Vec<serde_json::Value>,
    eps: Vec<serde_json::Value>,
) -> Proxy {
    let cfg = config(
        vec![http_listener(8080, "r")],
        vec![route_config("r", vhosts)],
        clusters,
        eps,
    );
    let p = Proxy::with_config("router", &cfg, BIND);
    p.wait_ready();
    p
}

fn to(cluster: &str) -> serde_json::Value {
    json!({"match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "0s"}})
}

#[test]
fn h1_and_h2_in_all_four_combinations() {
    let echo = EchoServer::http("echo");
    let vhosts = json!([{"name": "v", "domains": ["*"], "includeRequestAttemptCount": true, "routes": [
        {"match": {"prefix": "/h2"}, "route": {"cluster": "h2"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "h1"}}]}]);
    let p = gateway(
        vhosts,
        vec![
            eds_cluster("h1", "ROUND_ROBIN", false),
            eds_cluster("h2", "ROUND_ROBIN", true),
        ],
        vec![endpoints("h1", &[echo.addr]), endpoints("h2", &[echo.addr])],
    );
    let addr = p.addr("0.0.0.0_8080");
    let rt = rt();
    for (down_h2, path, up) in [
        (false, "/x", "HTTP/1.1"),
        (false, "/h2/x", "HTTP/2"),
        (true, "/x", "HTTP/1.1"),
        (true, "/h2/x", "HTTP/2"),
    ] {
        let r = rt
            .block_on(send(addr, down_h2, req(down_h2, "example.com", path, &[])))
            .unwrap();
        assert_eq!(r.status, 200, "down_h2={down_h2} {path}: {:?}", r.body);
        let j = r.json();
        assert_eq!(j["protocol"], up, "down_h2={down_h2} {path}");
        assert_eq!(j["path"], path);
        if up == "HTTP/1.1" {
            assert_eq!(r.echoed("host").as_deref(), Some("example.com"));
        }
        // Envoy's own headers, both ways.
        assert_eq!(r.header("server"), Some("istio-envoy"));
        assert!(r
            .header("x-envoy-upstream-service-time")
            .is_some_and(|v| v.parse::<u64>().is_ok()));
        let rid = r.echoed("x-request-id").expect("x-request-id generated");
        assert_eq!(rid.len(), 36, "{rid}");
        assert_eq!(r.echoed("x-envoy-attempt-count").as_deref(), Some("1"));
        assert_eq!(r.echoed("x-forwarded-proto").as_deref(), Some("http"));
        // A loopback client is named by the host's own address, as Envoy does.
        let own = ironmesh_proxy::dataplane::headers::xff_address([127, 0, 0, 1].into());
        assert_eq!(r.echoed("x-forwarded-for"), Some(own.to_string()));
    }
    // A client's x-request-id is kept.
    let r = get(addr, "example.com", "/", &[("x-request-id", "abc")]);
    assert_eq!(r.echoed("x-request-id").as_deref(), Some("abc"));
}

#[test]
fn local_replies_nr_uh_uf_nc_and_timeouts() {
    let echo = EchoServer::http("echo");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let vhosts = json!([{"name": "v", "domains": ["svc.local", "svc.local:*"], "routes": [
        {"match": {"prefix": "/uh"}, "route": {"cluster": "empty"}},
        {"match": {"prefix": "/uf"}, "route": {"cluster": "dead"}},
        {"match": {"prefix": "/nc"}, "route": {"cluster": "missing"}},
        {"match": {"prefix": "/delay"}, "route": {"cluster": "echo", "timeout": "0.2s"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "echo", "timeout": "0s"}}]}]);
    let p = gateway(
        vhosts,
        vec![
            eds_cluster("empty", "LEAST_REQUEST", false),
            eds_cluster("dead", "LEAST_REQUEST", false),
            eds_cluster("echo", "LEAST_REQUEST", false),
        ],
        vec![
            endpoints("empty", &[]),
            endpoints("dead", &[dead]),
            endpoints("echo", &[echo.addr]),
        ],
    );
    let addr = p.addr("0.0.0.0_8080");
    let r = get(addr, "other.host", "/", &[]);
    assert_eq!(r.status, 404, "no virtual host → NR");
    let r = get(addr, "svc.local", "/uh", &[]);
    assert_eq!((r.status, &r.body[..]), (503, &b"no healthy upstream"[..]));
    let r = get(addr, "svc.local", "/uf", &[]);
    assert_eq!(r.status, 503);
    assert!(
        String::from_utf8_lossy(&r.body).contains("connection failure"),
        "{:?}",
        r.body
    );
    assert_eq!(get(addr, "svc.local", "/nc", &[]).status, 503);
    let r = get(addr, "svc.local", "/delay/1000", &[]);
    assert_eq!(
        (r.status, &r.body[..]),
        (504, &b"upstream request timeout"[..])
    );
    assert_eq!(
        get(addr, "svc.local", "/delay/100", &[]).status,
        200,
        "within the route timeout"
    );
    // The client override shortens a route without a timeout.
    let r = get(
        addr,
        "svc.local",
        "/x/delay/1000",
        &[("x-envoy-upstream-rq-timeout-ms", "100")],
    );
    assert_eq!(r.status, 200, "path /x/delay is not a delay endpoint");
    let r = get(
        addr,
        "svc.local",
        "/delay/1000",
        &[("x-envoy-upstream-rq-timeout-ms", "50")],
    );
    assert_eq!(r.status, 504);
    assert_eq!(get(addr, "svc.local:8080", "/status/418", &[]).status, 418);
}

#[test]
fn route_matches_weights_rewrites_redirects_direct_responses_and_header_ops() {
    let a = EchoServer::http("a");
    let b = EchoServer::http("b");
    let vhosts = json!([
        {"name": "exact", "domains": ["reviews", "reviews:9080"], "routes": [to("b")]},
        {"name": "main", "domains": ["*"],
         "requestHeadersToAdd": [{"header": {"key": "x-vh", "value": "1"}, "appendAction": "OVERWRITE_IF_EXISTS_OR_ADD"}],
         "responseHeadersToAdd": [{"header": {"key": "x-resp-vh", "value": "yes"}}],
         "routes": [
            {"match": {"prefix": "/", "headers": [{"name": "end-user", "stringMatch": {"exact": "jason"}}]}, "route": {"cluster": "b"}},
            {"match": {"prefix": "/", "queryParameters": [{"name": "v", "stringMatch": {"exact": "b"}}]}, "route": {"cluster": "b"}},
            {"match": {"prefix": "/split"}, "route": {"weightedClusters": {"clusters": [{"name": "a", "weight": 25}, {"name": "b", "weight": 75}]}}},
            {"match": {"prefix": "/old/"}, "route": {"cluster": "a", "prefixRewrite": "/new/"}},
            {"match": {"safeRegex": {"regex": "/re/([0-9]+)"}}, "route": {"cluster": "a", "regexRewrite": {"pattern": {"regex": "/re/([0-9]+)"}, "substitution": "/id/\\1"}}},
            {"match": {"prefix": "/host"}, "route": {"cluster": "a", "hostRewriteLiteral": "rewritten.example"}},
            {"match": {"path": "/redirect"}, "redirect": {"hostRedirect": "elsewhere.example", "pathRedirect": "/there", "responseCode": "FOUND"}},
            {"match": {"prefix": "/https"}, "redirect": {"httpsRedirect": true}},
            {"match": {"prefix": "/direct"}, "directResponse": {"status": 418, "body": {"inlineString": "teapot"}}},
            {"match": {"prefix": "/hdr"}, "route": {"cluster": "a"},
             "requestHeadersToAdd": [{"header": {"key": "x-added", "value": "v"}}],
             "requestHeadersToRemove": ["x-drop"],
             "responseHeadersToAdd": [{"header": {"key": "x-resp", "value": "r"}}],
             "responseHeadersToRemove": ["x-echo-server"]},
            {"match": {"prefix": "/"}, "route": {"cluster": "a"}}]}]);
    let p = gateway(
        vhosts,
        vec![
            eds_cluster("a", "ROUND_ROBIN", false),
            eds_cluster("b", "ROUND_ROBIN", false),
        ],
        vec![endpoints("a", &[a.addr]), endpoints("b", &[b.addr])],
    );
    let addr = p.addr("0.0.0.0_8080");
    let server = |host: &str, path: &str, h: &[(&str, &str)]| {
        get(addr, host, path, h)
            .header("x-echo-server")
            .map(str::to_string)
    };
    assert_eq!(
        server("reviews:9080", "/", &[]).as_deref(),
        Some("b"),
        "exact domain with port"
    );
    assert_eq!(server("any", "/", &[]).as_deref(), Some("a"));
    assert_eq!(
        server("any", "/", &[("end-user", "jason")]).as_deref(),
        Some("b"),
        "header match"
    );
    assert_eq!(
        server("any", "/?x=1&v=b", &[]).as_deref(),
        Some("b"),
        "query match"
    );
    let split = count_servers(addr, "any", "/split", 400);
    let a_share = split.get("a").copied().unwrap_or(0);
    assert!((60..140).contains(&a_share), "25/75 split gave {split:?}");
    let r = get(addr, "any", "/old/x?q=1", &[]);
    assert_eq!(r.json()["path"], "/new/x?q=1");
    assert_eq!(
        r.echoed("x-envoy-original-path").as_deref(),
        Some("/old/x?q=1")
    );
    assert_eq!(get(addr, "any", "/re/42", &[]).json()["path"], "/id/42");
    assert_eq!(
        get(addr, "any", "/host", &[]).echoed("host").as_deref(),
        Some("rewritten.example")
    );
    let r = get(addr, "any", "/redirect?a=1", &[]);
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("http://elsewhere.example/there?a=1"))
    );
    let r = get(addr, "any:8080", "/https/p", &[]);
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("https://any/https/p"))
    );
    let r = get(addr, "any", "/direct", &[]);
    assert_eq!((r.status, &r.body[..]), (418, &b"teapot"[..]));
    let r = get(addr, "any", "/hdr", &[("x-drop", "1"), ("x-vh", "client")]);
    assert_eq!(r.echoed("x-added").as_deref(), Some("v"));
    assert_eq!(r.echoed("x-drop"), None);
    assert_eq!(r.echoed("x-vh").as_deref(), Some("1"), "overwrite");
    assert_eq!(r.header("x-resp"), Some("r"));
    assert_eq!(r.header("x-resp-vh"), Some("yes"));
    assert_eq!(r.header("x-echo-server"), None, "response header removed");
}

#[test]
fn grpc_trailers_pass_through() {
    let echo = EchoServer::http("grpc");
    let p = gateway(
        json!([{"name": "v", "domains": ["*"], "routes": [to("g")]}]),
        vec![eds_cluster("g", "ROUND_ROBIN", true)],
        vec![endpoints("g", &[echo.addr])],
    );
    let addr = p.addr("0.0.0.0_8080");
    let msg = bytes::Bytes::from_static(b"\x00\x00\x00\x00\x05hello");
    let r = rt()
        .block_on(send(
            addr,
            true,
            http::Request::builder()
                .method("POST")
                .uri("http://grpc.svc/pkg.Echo/Say")
                .version(http::Version::HTTP_2)
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(http_body_util::Full::new(msg.clone()))
                .unwrap(),
        ))
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, msg);
    let t = r.trailers.expect("trailers");
    assert_eq!(t.get("grpc-status").unwrap(), "0");
    assert_eq!(t.get("grpc-message").unwrap(), "ok");
}

#[test]
fn websocket_upgrade_echo() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let echo = EchoServer::http("ws");
    let p = gateway(
        json!([{"name": "v", "domains": ["*"], "routes": [to("w")]}]),
        vec![eds_cluster("w", "ROUND_ROBIN", false)],
        vec![endpoints("w", &[echo.addr])],
    );
    let addr = p.addr("0.0.0.0_8080");
    rt().block_on(async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /ws HTTP/1.1\r\nHost: ws\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await.unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("upgrade: websocket"), "{head}");
        for msg in [&b"\x81\x05hello"[..], b"\x81\x03abc"] {
            s.write_all(msg).await.unwrap();
            let mut got = vec![0u8; msg.len()];
            tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got)).await.unwrap().unwrap();
            assert_eq!(got, msg);
        }
    });
}

#[test]
fn load_balancing_policies_distribute() {
    let backends: Vec<EchoServer> = (0..3).map(|i| EchoServer::http(&format!("b{i}"))).collect();
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let vhosts = json!([{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/rr"}, "route": {"cluster": "rr"}},
        {"match": {"prefix": "/random"}, "route": {"cluster": "random"}},
        {"match": {"prefix": "/lr"}, "route": {"cluster": "lr"}}]}]);
    let mut weighted = endpoints("rr", &addrs);
    weighted["endpoints"][0]["lbEndpoints"][0]["loadBalancingWeight"] = json!(2);
    let p = gateway(
        vhosts,
        vec![
            eds_cluster("rr", "ROUND_ROBIN", false),
            eds_cluster("random", "RANDOM", false),
            eds_cluster("lr", "LEAST_REQUEST", false),
        ],
        vec![
            weighted,
            endpoints("random", &addrs),
            endpoints("lr", &addrs),
        ],
    );
    let addr = p.addr("0.0.0.0_8080");
    // Weighted round robin 2:1:1 is exact.
    let rr = count_servers(addr, "h", "/rr", 400);
    assert_eq!((rr["b0"], rr["b1"], rr["b2"]), (200, 100, 100), "{rr:?}");
    for path in ["/random", "/lr"] {
        let c = count_servers(addr, "h", path, 300);
        for b in ["b0", "b1", "b2"] {
            let n = c.get(b).copied().unwrap_or(0);
            assert!((50..150).contains(&n), "{path}: {c:?}");
        }
    }
}

#[test]
fn fault_abort_per_route() {
    let echo = EchoServer::http("echo");
    let vhosts = json!([{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/fault"}, "route": {"cluster": "e"}, "typedPerFilterConfig": {"envoy.filters.http.fault": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            "abort": {"httpStatus": 503, "percentage": {"numerator": 100}}}}},
        to("e")]}]);
    let p = gateway(
        vhosts,
        vec![eds_cluster("e", "ROUND_ROBIN", false)],
        vec![endpoints("e", &[echo.addr])],
    );
    let addr = p.addr("0.0.0.0_8080");
    let r = get(addr, "h", "/fault", &[]);
    assert_eq!((r.status, &r.body[..]), (503, &b"fault filter abort"[..]));
    assert_eq!(get(addr, "h", "/", &[]).status, 200);
}
