//! `ironmesh-proxy iptables` / `cleanup-iptables` against the real kernel, inside a
//! network namespace this test creates (root only).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ironmesh-proxy");

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

macro_rules! require_root {
    ($name:expr) => {
        if !is_root() {
            eprintln!("SKIPPED (needs root): {}", $name);
            return;
        }
    };
}

/// A network namespace removed on drop, even when the test fails.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "im-ipt-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "ip netns add: {out:?}");
        let ns = Netns { name };
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn exec(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .unwrap()
    }

    fn ok(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "{argv:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn spawn(&self, argv: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    }

    /// `iptables-save` without comments and counters.
    fn rules(&self) -> String {
        self.ok(&["iptables-save"])
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| match l.find(" [") {
                Some(i) if l.starts_with(':') => &l[..i],
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rule_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("-A "))
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// Our chain declarations and every rule, in iptables-save's order.
fn ours(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("-A ") || l.starts_with(":ISTIO_"))
        .collect()
}

fn dry_run(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("iptables")
        .arg("--dry-run")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn install_is_idempotent_and_cleanup_removes_everything() {
    require_root!("install_is_idempotent_and_cleanup_removes_everything");
    let ns = Netns::new();
    let before = ns.rules();

    ns.ok(&[BIN, "iptables"]);
    let first = ns.rules();
    // The kernel holds exactly the rules the dry run prints, including the seed's
    // chains.
    assert_eq!(rule_lines(&first), rule_lines(&dry_run(&[])));
    for chain in [
        "ISTIO_INBOUND",
        "ISTIO_IN_REDIRECT",
        "ISTIO_OUTPUT",
        "ISTIO_REDIRECT",
    ] {
        assert!(first.contains(&format!(":{chain} -")), "{chain} in {first}");
    }
    assert!(first.contains("-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN"));

    ns.ok(&[BIN, "iptables"]);
    assert_eq!(
        ns.rules(),
        first,
        "a second run must not duplicate anything"
    );

    // A different config replaces the first one, with no leftovers.
    ns.ok(&[BIN, "iptables", "--redirect-dns", "-m", "TPROXY"]);
    let switched = ns.rules();
    assert_eq!(
        rule_lines(&switched),
        rule_lines(&dry_run(&["--redirect-dns", "-m", "TPROXY"]))
    );
    ns.ok(&[BIN, "iptables"]);
    // (iptables-save now also lists the emptied mangle table: compare our lines only.)
    assert_eq!(ours(&ns.rules()), ours(&first));

    ns.ok(&[BIN, "cleanup-iptables"]);
    let after = ns.rules();
    assert!(!after.contains("ISTIO_"), "{after}");
    assert_eq!(rule_lines(&after), rule_lines(&before));
    // Nothing left: cleanup still succeeds.
    ns.ok(&[BIN, "cleanup-iptables"]);
}

#[test]
fn dual_stack_installs_ip6tables_rules_too() {
    require_root!("dual_stack_installs_ip6tables_rules_too");
    let ns = Netns::new();
    for args in [
        &["--dual-stack"][..],
        &["--dual-stack", "--redirect-dns", "-m", "TPROXY"],
    ] {
        let mut argv = vec![BIN, "iptables"];
        argv.extend_from_slice(args);
        ns.ok(&argv);
        ns.ok(&argv);
        let dry = dry_run(args);
        let (v4, v6) = dry
            .split_once("# ip6tables-restore --noflush\n")
            .expect("the dry run has an IPv6 section");
        assert_eq!(
            rule_lines(&ns.ok(&["iptables-save"])),
            rule_lines(v4),
            "{args:?}"
        );
        let saved6 = ns.ok(&["ip6tables-save"]);
        assert_eq!(rule_lines(&saved6), rule_lines(v6), "{args:?}");
        assert!(
            saved6.contains("-A ISTIO_OUTPUT -s ::6/128 -o lo -j RETURN"),
            "{saved6}"
        );
    }
    ns.ok(&[BIN, "cleanup-iptables"]);
    assert!(!ns.ok(&["ip6tables-save"]).contains("ISTIO_"));
    assert!(!ns.ok(&["iptables-save"]).contains("ISTIO_"));
}

const LISTENER: &str = r#"
import socket, struct, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 15001))
s.listen(8)
print("listening", flush=True)
while True:
    c, peer = s.accept()
    raw = c.getsockopt(socket.SOL_IP, 80, 16)  # SO_ORIGINAL_DST
    port, ip = struct.unpack("!2xH4s8x", raw)
    print("accepted original_dst=%s:%d" % (socket.inet_ntoa(ip), port), flush=True)
    c.recv(4096)
    c.sendall(b"HTTP/1.0 200 OK\r\ncontent-length: 8\r\n\r\ncaptured")
    c.close()
"#;

fn curl_as(ns: &Netns, uid: &str) -> Output {
    ns.exec(&[
        "setpriv",
        "--reuid",
        uid,
        "--regid",
        uid,
        "--clear-groups",
        "curl",
        "-s",
        "--connect-timeout",
        "2",
        "--max-time",
        "4",
        "http://240.240.0.1:80/",
    ])
}

#[test]
fn app_traffic_is_captured_and_proxy_traffic_is_not() {
    require_root!("app_traffic_is_captured_and_proxy_traffic_is_not");
    let ns = Netns::new();
    // A route for the VIP range, into a device that goes nowhere: without a route
    // the connect fails before the nat OUTPUT hook ever sees it.
    // (A veth pair with both ends in the namespace: the dummy driver is not always
    // available.)
    ns.ok(&[
        "ip", "link", "add", "im-a", "type", "veth", "peer", "name", "im-b",
    ]);
    ns.ok(&["ip", "addr", "add", "10.213.0.2/16", "dev", "im-a"]);
    ns.ok(&["ip", "link", "set", "im-a", "up"]);
    ns.ok(&["ip", "link", "set", "im-b", "up"]);
    ns.ok(&["ip", "route", "add", "240.240.0.0/16", "dev", "im-a"]);
    // A permanent neighbour entry: without it, a failed ARP lookup from one curl makes
    // the next fail at once with "no route to host", and timing decides the outcome.
    ns.ok(&[
        "ip",
        "neigh",
        "add",
        "240.240.0.1",
        "lladdr",
        "02:00:00:00:00:01",
        "dev",
        "im-a",
        "nud",
        "permanent",
    ]);

    let mut listener = KillOnDrop(ns.spawn(&["/usr/bin/python3", "-c", LISTENER]));
    let stdout = listener.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "listening"
    );

    // Before the rules: the VIP goes nowhere.
    assert!(!curl_as(&ns, "1000").status.success());
    assert!(rx.try_recv().is_err());

    ns.ok(&[BIN, "iptables"]);

    let app = curl_as(&ns, "1000");
    assert!(app.status.success(), "app curl: {app:?}");
    assert_eq!(String::from_utf8_lossy(&app.stdout), "captured");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        "accepted original_dst=240.240.0.1:80"
    );

    // The proxy's own uid is not captured: its connection goes to the real (dead) route.
    let started = Instant::now();
    let proxy = curl_as(&ns, "1337");
    assert!(
        !proxy.status.success(),
        "uid 1337 must not reach 15001: {proxy:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it timed out, not refused"
    );
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());

    ns.ok(&[BIN, "cleanup-iptables"]);
    assert!(
        !curl_as(&ns, "1000").status.success(),
        "no capture after cleanup"
    );
    assert!(rx.try_recv().is_err());
}
