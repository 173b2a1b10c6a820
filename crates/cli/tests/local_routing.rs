//! End to end through `ironmesh up`: seed 002's routing scenarios — canary by header,
//! host routing with a rewrite on the ingress gateway, HTTPS termination with a
//! credential from a TLS Secret.

mod local_support;

use std::time::Duration;

use local_support::*;
use serde_json::Value;

fn example(name: &str) -> String {
    examples_dir().join(name).to_str().unwrap().to_string()
}

fn forwarded(port: u16) -> String {
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string("/run/ironmesh/state.json").unwrap())
            .unwrap();
    state["forwards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == format!("istio-ingressgateway:{port}"))
        .unwrap_or_else(|| panic!("gateway port {port} not forwarded"))["local"]
        .as_str()
        .unwrap()
        .to_string()
}

fn curl(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-m", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// upstream_host of the toolbox sidecar's access-log line for `request_id`.
fn upstream_of(request_id: &str) -> String {
    let line = eventually(Duration::from_secs(5), || {
        ok(&["logs", "toolbox", "-n", "canary", "-c", "istio-proxy"])
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["request_id"] == request_id)
    })
    .unwrap_or_else(|| panic!("no access log for {request_id}"));
    line["upstream_host"].as_str().unwrap_or("").to_string()
}

#[test]
fn canary_by_header() {
    if require_root("canary_by_header").is_none() {
        return;
    }
    let (_mesh, _) = Mesh::up(&["--profile", "minimal", "-f", &example("canary")]);
    let vs = ok(&["get", "virtualservices", "-n", "canary"]);
    assert!(
        vs.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["canary", "canary", "[]", "[canary]"]),
        "{vs}"
    );
    let dr = ok(&["get", "dr"]);
    assert!(
        dr.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["canary", "canary", "canary"]),
        "{dr}"
    );
    let svc = ok(&["get", "svc", "-n", "canary"]);
    assert!(
        svc.lines()
            .any(|l| l.starts_with("canary") && l.contains("240.240.") && l.ends_with("80/TCP")),
        "{svc}"
    );
    let v1 = pod_row("canary-v1-");
    let v2 = pod_row("canary-v2-");
    for (header, want) in [
        (Some("user: zhongmingmao"), &v2),
        (None, &v1),
        (Some("user: someone-else"), &v1),
    ] {
        for i in 0..10 {
            let rid = format!("canary-{}-{i}", header.is_some());
            let rid = format!("{rid}-{}", want[1]);
            let mut cmd = vec![
                "exec",
                "toolbox",
                "-n",
                "canary",
                "--",
                "curl",
                "-sS",
                "-m",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
            ];
            let rid_header = format!("x-request-id: {rid}");
            cmd.push(&rid_header);
            if let Some(h) = header {
                cmd.push("-H");
                cmd.push(h);
            }
            cmd.push("http://canary/");
            assert_eq!(ok(&cmd), "200");
            assert_eq!(
                upstream_of(&rid),
                format!("{}:80", want[5]),
                "header {header:?} should reach {}",
                want[1]
            );
        }
    }
}

#[test]
fn ingress_host_routing_with_rewrite() {
    if require_root("ingress_host_routing_with_rewrite").is_none() {
        return;
    }
    let (_mesh, _) = Mesh::up(&["-f", &example("ingress")]);
    let gw = format!("http://{}", forwarded(80));
    let host = "Host: simple.zhongmingmao.io";
    // nginx's page is served for / only: a 200 for /nginx proves the rewrite.
    let (code, body) = curl(&["-H", host, &format!("{gw}/nginx")]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Welcome to nginx!"), "{body}");
    let (code, _) = curl(&["-H", host, &format!("{gw}/")]);
    assert_eq!(code, 404, "only /nginx is routed");
    let (code, _) = curl(&[&format!("{gw}/nginx")]);
    assert_eq!(
        code, 404,
        "a request without the gateway's host is not routed"
    );
    let (code, _) = curl(&["-H", "Host: other.zhongmingmao.io", &format!("{gw}/nginx")]);
    assert_eq!(code, 404);
}

#[test]
fn https_gateway_with_a_tls_secret() {
    if require_root("https_gateway_with_a_tls_secret").is_none() {
        return;
    }
    // A copy of the example, so the generated secret.yaml stays out of the source tree.
    let dir = std::env::temp_dir().join(format!("ironmesh-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["https-gateway.yaml", "gen-cert.sh"] {
        std::fs::copy(examples_dir().join("https-gateway").join(f), dir.join(f)).unwrap();
    }
    let gen = std::process::Command::new("sh")
        .arg(dir.join("gen-cert.sh"))
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let (_mesh, _) = Mesh::up(&["-f", dir.to_str().unwrap()]);
    let local = forwarded(443);
    let port = local.rsplit(':').next().unwrap();
    let resolve = format!("httpsserver.zhongmingmao.io:{port}:127.0.0.1");
    let url = format!("https://httpsserver.zhongmingmao.io:{port}/");
    let mut last = (0, String::new());
    let served = eventually(Duration::from_secs(20), || {
        last = curl(&["--resolve", &resolve, "-k", &url]);
        (last.0 == 200).then_some(())
    });
    let (code, body) = last;
    if served.is_none() {
        let gw = pod_row("istio-ingressgateway-");
        let logs = ok(&["logs", &gw[1], "-n", "istio-system"]);
        let tail: Vec<&str> = logs.lines().rev().take(30).collect();
        panic!(
            "HTTPS through the gateway: {code} {body}\npods: {:?}\ngateway log (newest first):\n{}",
            pods(),
            tail.join("\n")
        );
    }
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Welcome to nginx!"), "{body}");
    // The certificate is the Secret's.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--noproxy",
            "*",
            "-m",
            "10",
            "-k",
            "-v",
            "-o",
            "/dev/null",
            "--resolve",
            &resolve,
            &url,
        ])
        .output()
        .unwrap();
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(verbose.contains("zhongmingmao"), "{verbose}");
}
