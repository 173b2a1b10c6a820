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

/// A route's retry policy, shaped as Istio writes it.
fn retrying(
    cluster: &str,
    retry_on: &str,
    retries: u32,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut policy = json!({"retryOn": retry_on, "numRetries": retries,
        "retryHostPredicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}],
        "hostSelectionRetryMaxAttempts": "5"});
    if let (Some(p), Some(e)) = (policy.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({"cluster": cluster, "timeout": "5s", "retryPolicy": policy})
}

/// `route` with the matched prefix rewritten to `/` (the echo's `/delay/MS` then applies).
fn rewritten(mut route: serde_json::Value) -> serde_json::Value {
    route["prefixRewrite"] = json!("/");
    route
}

#[test]
fn retries_follow_the_route_policy() {
    let echo = EchoServer::http("live");
    // Free when chosen and below the ephemeral range: nothing listens there.
    let dead = ironmesh_testkit::net::loopback(ironmesh_testkit::net::free_ports(1)[0]);
    let dir = ironmesh_testkit::TempDir::new().unwrap();
    let log = dir.path().join("access.log");
    let mut listener = http_listener(8080, "r");
    listener["filterChains"][0]["filters"][0]["typedConfig"]["accessLog"] = json!([{
        "name": "envoy.access_loggers.file", "typedConfig": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": log.display().to_string(), "logFormat": {"textFormatSource": {"inlineString":
        "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %RESPONSE_CODE_DETAILS% %UPSTREAM_TRANSPORT_FAILURE_REASON%\n"}}}}]);
    let vhosts = json!([{"name": "v", "domains": ["*"], "includeRequestAttemptCount": true,
        "includeAttemptCountInResponse": true, "routes": [
        {"match": {"prefix": "/flaky"}, "route": retrying("flaky", "connect-failure", 2, json!({}))},
        {"match": {"prefix": "/dead"}, "route": retrying("dead", "connect-failure,refused-stream", 2, json!({}))},
        {"match": {"prefix": "/pertry/"}, "route": rewritten(retrying("echo", "5xx", 1, json!({"perTryTimeout": "0.1s"})))},
        {"match": {"prefix": "/slow/"}, "route": rewritten(retrying("echo", "connect-failure", 1, json!({"perTryTimeout": "0.1s"})))},
        {"match": {"prefix": "/s/"}, "route": {"cluster": "echo", "prefixRewrite": "/",
            "retryPolicy": {"retryOn": "retriable-status-codes", "numRetries": 2, "retriableStatusCodes": [503]}}},
        {"match": {"prefix": "/none"}, "route": {"cluster": "dead"}},
        {"match": {"prefix": "/h2"}, "route": retrying("flaky-h2", "connect-failure", 2, json!({}))}]}]);
    let cfg = config(
        vec![listener],
        vec![route_config("r", vhosts)],
        vec![
            eds_cluster("flaky", "ROUND_ROBIN", false),
            eds_cluster("dead", "ROUND_ROBIN", false),
            eds_cluster("echo", "ROUND_ROBIN", false),
            eds_cluster("flaky-h2", "ROUND_ROBIN", true),
        ],
        vec![
            endpoints("flaky-h2", &[echo.addr, dead]),
            endpoints("flaky", &[echo.addr, dead]),
            endpoints("dead", &[dead]),
            endpoints("echo", &[echo.addr]),
        ],
    );
    let p = Proxy::with_config("router", &cfg, BIND);
    p.wait_ready();
    let addr = p.addr("0.0.0.0_8080");

    // Round robin over a live and a dead host: each failed connect is retried on the
    // live one (previous_hosts), so every request succeeds; half took two attempts.
    let mut attempts = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let r = get(addr, "h", "/flaky", &[]);
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.header("x-echo-server"), Some("live"));
        let n = r.header("x-envoy-attempt-count").unwrap().to_string();
        assert_eq!(
            r.echoed("x-envoy-attempt-count"),
            Some(n.clone()),
            "upstream sees the attempt"
        );
        *attempts.entry(n).or_insert(0) += 1;
    }
    // Round robin meets the dead host first at least every other request (a retry's
    // pick takes a turn too, as in Envoy); no request needed a third attempt.
    let retried = attempts.get("2").copied().unwrap_or(0);
    assert!(
        retried >= 10 && attempts.keys().all(|k| k == "1" || k == "2"),
        "{attempts:?}"
    );

    // Requests with a body (hyper's client), and HTTP/2 upstreams: a failed connect sent
    // nothing, so the request, body and all, goes to the next host.
    let rt = rt();
    let mut retried = 0;
    for i in 0..10 {
        let (h2, path) = if i % 2 == 0 {
            (false, "/flaky")
        } else {
            (true, "/h2")
        };
        let mut request = req(false, "h", path, &[]);
        *request.method_mut() = http::Method::POST;
        *request.body_mut() = http_body_util::Full::new(bytes::Bytes::from_static(b"hello"));
        let r = rt.block_on(send(addr, false, request)).unwrap();
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        let j = r.json();
        assert_eq!(
            (j["method"].as_str(), j["body_len"].as_u64()),
            (Some("POST"), Some(5))
        );
        assert_eq!(j["protocol"], if h2 { "HTTP/2" } else { "HTTP/1.1" });
        let n = r.header("x-envoy-attempt-count").unwrap().to_string();
        assert_eq!(r.echoed("x-envoy-attempt-count"), Some(n.clone()));
        retried += usize::from(n == "2");
    }
    assert!(
        retried >= 4,
        "round robin met the dead host first: {retried} of 10 retried"
    );

    // Every attempt fails: Envoy's body after retries, URX before UF (the order Envoy
    // sets them in), three attempts.
    let r = get(addr, "h", "/dead", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure"
    );
    assert_eq!(r.header("x-envoy-attempt-count"), Some("3"));
    let r = get(addr, "h", "/none", &[]);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"
    );
    assert_eq!(r.header("x-envoy-attempt-count"), Some("1"));

    // A per-try timeout is retried under 5xx; the route gives up after the second.
    let t = std::time::Instant::now();
    let r = get(addr, "h", "/pertry/delay/1000", &[]);
    let took = t.elapsed();
    assert_eq!(
        (r.status, &r.body[..]),
        (504, &b"upstream request timeout"[..])
    );
    assert_eq!(r.header("x-envoy-attempt-count"), Some("2"));
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(900),
        "two 100 ms tries plus a back-off under 25 ms, not the 1 s answer: {took:?}"
    );
    // Not retriable under connect-failure: one try, then 504.
    let r = get(addr, "h", "/slow/delay/1000", &[]);
    assert_eq!(r.status, 504);
    assert_eq!(r.header("x-envoy-attempt-count"), Some("1"));

    // A retriable status is retried, and the last answer goes back as it came.
    let r = get(addr, "h", "/s/status/503", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.header("x-echo-server"),
        Some("live"),
        "the upstream's answer"
    );
    assert_eq!(r.header("x-envoy-attempt-count"), Some("3"));
    let r = get(addr, "h", "/s/status/500", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(
        r.header("x-envoy-attempt-count"),
        Some("1"),
        "500 is not listed"
    );

    // One line per request: 20 + 10 above, then dead, none, pertry, slow and two statuses.
    let lines = wait_for_lines(&log, 36);
    assert_eq!(lines.len(), 36, "{}", lines.join("\n"));
    let line = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line for {prefix}:\n{}", lines.join("\n")))
            .clone()
    };
    let refused = "delayed_connect_error:_Connection_refused";
    assert_eq!(
        line("/dead "),
        format!("/dead 503 URX,UF 3 upstream_reset_before_response_started{{remote_connection_failure|{refused}}} {refused}")
    );
    assert_eq!(
        line("/none "),
        format!("/none 503 UF 1 upstream_reset_before_response_started{{remote_connection_failure|{refused}}} {refused}")
    );
    assert_eq!(
        line("/pertry/"),
        "/pertry/delay/1000 504 URX,UT 2 upstream_per_try_timeout -"
    );
    assert_eq!(
        line("/slow/"),
        "/slow/delay/1000 504 UT 1 upstream_per_try_timeout -"
    );
    assert_eq!(
        line("/s/status/503"),
        "/s/status/503 503 URX 3 via_upstream -"
    );
    assert_eq!(
        line("/s/status/500"),
        "/s/status/500 500 - 1 via_upstream -"
    );
}

/// The file's lines once it has at least `n`.
fn wait_for_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
