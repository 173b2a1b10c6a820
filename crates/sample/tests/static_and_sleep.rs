//! The nginx stand-in and sleep through the real binary.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{request, Sample, BIN};

#[test]
fn static_serves_the_615_byte_welcome_page() {
    let s = Sample::start(&["static"], &[]);
    for path in ["/", "/index.html"] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body.len(), 615, "{path}");
        assert_eq!(r.header("content-length"), Some("615"));
        assert_eq!(r.header("content-type"), Some("text/html"));
        assert_eq!(r.header("server"), Some("nginx"));
        assert!(r.text().contains("<title>Welcome to nginx!</title>"));
    }
    let head = request(s.addr, "HEAD", "/", &[("User-Agent", "curl/7.29.0")], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("615"));

    let missing = s.get("/nginx");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("server"), Some("nginx"));
    assert!(missing
        .text()
        .contains("<center><h1>404 Not Found</h1></center>"));
    assert_eq!(request(s.addr, "POST", "/", &[], b"x").status, 405);

    // nginx's access-log format, as the seed's `kubectl logs` shows it.
    let line = s.wait_log("\"HEAD / HTTP/1.1\"");
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains("+0000] \"HEAD / HTTP/1.1\" 200 0 \"-\" \"curl/7.29.0\" \"-\""),
        "{line}"
    );
    let line = s.wait_log("\"GET /index.html HTTP/1.1\"");
    assert!(line.contains(" 200 615 "), "{line}");
}

#[test]
fn sleep_exits_cleanly_on_sigterm() {
    let mut child = Command::new(BIN)
        .arg("sleep")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "sleep must keep running"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sleep ignored SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sleep_seconds_and_servers_stop_on_sigterm() {
    let start = Instant::now();
    let st = Command::new(BIN)
        .args(["sleep", "--seconds", "1"])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(start.elapsed() >= Duration::from_millis(950));

    let mut s = Sample::start(&["httpbin"], &[]);
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            assert_eq!(st.code(), Some(0));
            break;
        }
        assert!(Instant::now() < deadline, "httpbin ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_role_has_help() {
    for role in [
        "httpbin",
        "static",
        "productpage",
        "details",
        "reviews",
        "ratings",
        "sleep",
    ] {
        let out = Command::new(BIN).args([role, "--help"]).output().unwrap();
        assert!(out.status.success(), "{role} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: ironmesh-sample"), "{role}: {text}");
    }
    let out = Command::new(BIN).arg("nosuchrole").output().unwrap();
    assert!(!out.status.success());
}
