//! The DNS proxy as the agent runs it: a sidecar with `ISTIO_META_DNS_CAPTURE=true`
//! subscribes to discovery's name table (NDS) and answers mesh names from it; a name
//! added to the config later is answered without a restart.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use ironmesh_testkit::discovery::Workspace;
use ironmesh_testkit::node;
use ironmesh_testkit::proxy::{binary, Proxy, ProxyOptions};

const HTTPBIN: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: istio-demo}
spec:
  clusterIP: 240.240.7.7
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 80}]
"#;

const RATINGS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: bookinfo}
spec:
  clusterIP: 240.240.9.9
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
"#;

fn ask(server: SocketAddr, name: &str) -> Vec<IpAddr> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut q = Message::new();
    q.set_id(4242)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    sock.send_to(&q.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = sock
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no DNS answer for {name}: {e}"));
    let m = Message::from_vec(&buf[..n]).unwrap();
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

fn wait_answer(server: SocketAddr, name: &str, want: &str, proxy: &Proxy) {
    let want: IpAddr = want.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = ask(server, name);
        if got == [want] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: got {got:?}, wanted {want}\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sidecar_answers_mesh_names_from_discovery() {
    let ws = Workspace::new();
    ws.write("httpbin.yaml", HTTPBIN);
    let discovery = ws.start_discovery();
    let mut sleep = node::sidecar(
        "10.213.0.5",
        "sleep-1",
        "istio-demo",
        "sleep",
        "v1",
        "sleep",
    );
    sleep.metadata["DNS_CAPTURE"] = "true".into();
    let mut opts = ProxyOptions::new(&binary(), sleep, discovery.xds);
    opts.extra_args = [
        "--dns-addr",
        "127.0.0.1:0",
        "--outbound-port",
        "0",
        "--inbound-port",
        "0",
    ]
    .map(String::from)
    .to_vec();
    let proxy = Proxy::start(&opts).unwrap_or_else(|e| panic!("{e}"));
    let dns = proxy
        .logged_addr("dns=")
        .unwrap_or_else(|| panic!("no `listening dns=` line\n{}", proxy.logs()));

    for name in [
        "httpbin",
        "httpbin.istio-demo",
        "httpbin.istio-demo.svc",
        "httpbin.istio-demo.svc.cluster.local.",
    ] {
        wait_answer(dns, name, "240.240.7.7", &proxy);
    }
    // A Service added while the proxy runs is pushed and answered.
    ws.write("ratings.yaml", RATINGS);
    wait_answer(dns, "ratings.bookinfo", "240.240.9.9", &proxy);
    // (Names outside the table are forwarded to resolv.conf's servers; not asked here,
    // because tests only talk to loopback.)
}

#[test]
fn dns_proxy_is_off_without_capture() {
    let ws = Workspace::new();
    ws.write("httpbin.yaml", HTTPBIN);
    let discovery = ws.start_discovery();
    let sleep = node::sidecar(
        "10.213.0.6",
        "sleep-2",
        "istio-demo",
        "sleep",
        "v1",
        "sleep",
    );
    let mut opts = ProxyOptions::new(&binary(), sleep, discovery.xds);
    opts.extra_args = [
        "--dns-addr",
        "127.0.0.1:0",
        "--outbound-port",
        "0",
        "--inbound-port",
        "0",
    ]
    .map(String::from)
    .to_vec();
    let proxy = Proxy::start(&opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        proxy.logged_addr("dns=").is_none(),
        "DNS proxy started without ISTIO_META_DNS_CAPTURE\n{}",
        proxy.logs()
    );
}
