//! End to end with the real control plane: `ironmesh-discovery` on a YAML directory
//! (seed 002's canary published on the ingress gateway) drives `ironmesh-proxy router`
//! over ADS; requests through the proxy reach the backends the Istio config selects.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;

struct Discovery(Child);

impl Drop for Discovery {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn template(name: &str, vars: &[(&str, String)]) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../discovery/testdata/interop")
        .join(name);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (k, v) in vars {
        text = text.replace(&format!("${{{k}}}"), v);
    }
    text
}

/// Echo servers named v1/v2 on 127.0.0.21 and 127.0.0.22, on one port free on both.
fn backends() -> (EchoServer, EchoServer) {
    for _ in 0..20 {
        let v1 = EchoServer::http_on("v1", "127.0.0.21:0".parse().unwrap());
        let port = v1.addr.port();
        if std::net::TcpListener::bind(("127.0.0.22", port)).is_ok() {
            let v2 = EchoServer::http_on("v2", SocketAddr::from(([127, 0, 0, 22], port)));
            return (v1, v2);
        }
    }
    panic!("no port free on both 127.0.0.21 and 127.0.0.22");
}

#[test]
fn discovery_config_routes_traffic_through_the_proxy() {
    let (v1, _v2) = backends();
    let dir = ironmesh_testkit::TempDir::new().unwrap();
    // Gateway target ports: never bound (the proxy maps them with --bind-port).
    let (http_port, specific_port) = (18080u16, 18081u16);
    std::fs::write(
        dir.path().join("canary-gateway.yaml"),
        template(
            "canary-gateway.yaml",
            &[
                ("BACKEND_PORT", v1.addr.port().to_string()),
                ("GATEWAY_HTTP_PORT", http_port.to_string()),
                ("GATEWAY_SPECIFIC_PORT", specific_port.to_string()),
            ],
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("canary-virtualservice.yaml"),
        template(
            "canary-virtualservice.yaml",
            &[("DEFAULT_SUBSET", "v1".into())],
        ),
    )
    .unwrap();

    let bin = ironmesh_testkit::bins::binary("ironmesh-discovery", "ironmesh-discovery");
    let mut child = Command::new(bin)
        .arg("--config-dir")
        .arg(dir.path())
        .args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--monitoring-addr",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ironmesh-discovery");
    let stdout = child.stdout.take().unwrap();
    let discovery = Discovery(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let xds = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("discovery prints its xDS address");
        if let Some(a) = line.strip_prefix("listening xds=") {
            break a.trim().to_string();
        }
    };

    let args: Vec<String> = [
        "--discovery-address",
        &xds,
        "--bind-port",
        &format!("{http_port}=127.0.0.1:0"),
        "--bind-port",
        &format!("{specific_port}=127.0.0.1:0"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = [
        ("POD_NAME", "istio-ingressgateway-cb9c6b49d-2bm49"),
        ("POD_NAMESPACE", "istio-system"),
        ("INSTANCE_IP", "127.0.0.30"),
        ("SERVICE_ACCOUNT", "istio-ingressgateway-service-account"),
        (
            "ISTIO_METAJSON_LABELS",
            r#"{"app":"istio-ingressgateway","istio":"ingressgateway"}"#,
        ),
    ];
    let p = Proxy::spawn(
        "router",
        &args,
        ironmesh_testkit::TempDir::new().unwrap(),
        &env,
    );
    p.wait_ready();
    let gw = p.addr(&format!("0.0.0.0_{http_port}"));
    let specific = p.addr(&format!("0.0.0.0_{specific_port}"));

    let server = |addr, host: &str, h: &[(&str, &str)]| {
        let r = get(addr, host, "/", h);
        (r.status, r.header("x-echo-server").map(str::to_string))
    };
    assert_eq!(
        server(gw, "anything.example", &[]),
        (200, Some("v1".into())),
        "default subset v1"
    );
    assert_eq!(
        server(gw, "anything.example", &[("user", "zhongmingmao")]),
        (200, Some("v2".into())),
        "header match → v2"
    );
    let split = count_servers(gw, "split.example.com", "/", 200);
    for v in ["v1", "v2"] {
        let n = split.get(v).copied().unwrap_or(0);
        assert!((60..140).contains(&n), "50/50 split gave {split:?}");
    }
    assert_eq!(
        server(specific, "only.example.com", &[]),
        (200, Some("v1".into()))
    );
    assert_eq!(
        server(specific, "other.example.com", &[]).0,
        404,
        "host not on the specific gateway"
    );

    // The VirtualService changes: discovery pushes, the proxy applies it live.
    std::fs::write(
        dir.path().join("canary-virtualservice.yaml"),
        template(
            "canary-virtualservice.yaml",
            &[("DEFAULT_SUBSET", "v2".into())],
        ),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server(gw, "anything.example", &[]).1.as_deref() != Some("v2") {
        assert!(
            std::time::Instant::now() < deadline,
            "config change not applied within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(discovery);
}
