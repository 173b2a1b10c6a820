//! The DNS proxy on real loopback sockets: every name form over UDP and TCP, forwarding
//! to a fake upstream this test runs, SERVFAIL when upstream is silent, live table swaps.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use ironmesh_proxy::dns::{self, NameTable};
use ironmesh_xds::nds::{self, NameInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

fn nds_table(extra: &[(&str, &str, &str, &str)]) -> nds::NameTable {
    let mut t = nds::NameTable::default();
    let rows = [
        (
            "httpbin.istio-demo.svc.cluster.local",
            "240.240.0.7",
            "httpbin",
            "istio-demo",
        ),
        (
            "ratings.bookinfo.svc.cluster.local",
            "240.240.3.3",
            "ratings",
            "bookinfo",
        ),
    ];
    for (host, ip, short, ns) in rows.iter().chain(extra) {
        t.table.insert(
            host.to_string(),
            NameInfo {
                ips: vec![ip.to_string()],
                registry: nds::REGISTRY_KUBERNETES.into(),
                shortname: short.to_string(),
                namespace: ns.to_string(),
                alt_hosts: vec![],
            },
        );
    }
    t.table.insert(
        "api.example.com".into(),
        NameInfo {
            ips: vec!["240.240.9.9".into()],
            registry: nds::REGISTRY_EXTERNAL.into(),
            ..Default::default()
        },
    );
    t
}

fn table(extra: &[(&str, &str, &str, &str)]) -> Arc<NameTable> {
    Arc::new(NameTable::from_nds(&ironmesh_xds::pack(&nds_table(extra))).unwrap())
}

fn query(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m.to_vec().unwrap()
}

async fn udp_ask(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let id = rand_id(name);
    sock.send_to(&query(name, rtype, id), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no UDP answer for {name}"))
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.id(), id);
    assert_eq!(m.message_type(), MessageType::Response);
    m
}

async fn tcp_ask(stream: &mut TcpStream, name: &str, rtype: RecordType) -> Message {
    let id = rand_id(name);
    let q = query(name, rtype, id);
    stream.write_u16(q.len() as u16).await.unwrap();
    stream.write_all(&q).await.unwrap();
    let len = stream.read_u16().await.unwrap() as usize;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.unwrap();
    let m = Message::from_vec(&buf).unwrap();
    assert_eq!(m.id(), id);
    m
}

fn rand_id(name: &str) -> u16 {
    name.bytes()
        .fold(7u16, |h, b| h.wrapping_mul(31).wrapping_add(b as u16))
}

fn a_records(m: &Message) -> Vec<(IpAddr, u32)> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some((IpAddr::V4(a.0), r.ttl())),
            _ => None,
        })
        .collect()
}

const FORMS: &[&str] = &[
    "httpbin",
    "httpbin.istio-demo",
    "httpbin.istio-demo.svc",
    "httpbin.istio-demo.svc.cluster.local",
    "httpbin.istio-demo.svc.cluster.local.",
];

/// A fake upstream resolver: answers every A query with 10.213.0.53 and counts them.
async fn fake_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
            c.fetch_add(1, Ordering::SeqCst);
            let q = Message::from_vec(&buf[..n]).unwrap();
            let mut r = Message::new();
            r.set_id(q.id())
                .set_message_type(MessageType::Response)
                .set_response_code(ResponseCode::NoError);
            for query in q.queries() {
                r.add_query(query.clone());
                r.add_answer(Record::from_rdata(
                    query.name().clone(),
                    300,
                    RData::A(A::new(10, 213, 0, 53)),
                ));
            }
            let _ = sock.send_to(&r.to_vec().unwrap(), peer).await;
        }
    });
    (addr, count)
}

#[tokio::test]
async fn mesh_names_answer_in_every_form_over_udp_and_tcp() {
    let (_tx, rx) = watch::channel(table(&[]));
    let (upstream, asked) = fake_upstream().await;
    let server = dns::serve(
        "127.0.0.1:0".parse().unwrap(),
        rx,
        vec![upstream],
        "istio-demo".into(),
    )
    .await
    .unwrap();
    assert_eq!(server.udp_addr.port(), server.tcp_addr.port());

    let vip: IpAddr = "240.240.0.7".parse().unwrap();
    for name in FORMS {
        let m = udp_ask(server.udp_addr, name, RecordType::A).await;
        assert_eq!(m.response_code(), ResponseCode::NoError, "{name}");
        assert_eq!(a_records(&m), vec![(vip, dns::TTL)], "{name} over UDP");
    }
    let mut tcp = TcpStream::connect(server.tcp_addr).await.unwrap();
    for name in FORMS {
        let m = tcp_ask(&mut tcp, name, RecordType::A).await;
        assert_eq!(a_records(&m), vec![(vip, dns::TTL)], "{name} over TCP");
    }
    // Another namespace's service: qualified forms only.
    let m = udp_ask(server.udp_addr, "ratings.bookinfo", RecordType::A).await;
    assert_eq!(a_records(&m)[0].0, "240.240.3.3".parse::<IpAddr>().unwrap());
    let m = udp_ask(server.udp_addr, "api.example.com", RecordType::A).await;
    assert_eq!(a_records(&m)[0].0, "240.240.9.9".parse::<IpAddr>().unwrap());

    // AAAA for a mesh name: empty NOERROR, answered here, not upstream.
    let m = udp_ask(server.udp_addr, "httpbin", RecordType::AAAA).await;
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert!(m.answers().is_empty());
    assert_eq!(
        asked.load(Ordering::SeqCst),
        0,
        "mesh names never go upstream"
    );

    // `ratings` alone is not a name in istio-demo: forwarded.
    let m = udp_ask(server.udp_addr, "ratings", RecordType::A).await;
    assert_eq!(a_records(&m)[0].0, "10.213.0.53".parse::<IpAddr>().unwrap());
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn other_names_are_forwarded_over_udp_and_tcp() {
    let (_tx, rx) = watch::channel(table(&[]));
    let (upstream, asked) = fake_upstream().await;
    let server = dns::serve(
        "127.0.0.1:0".parse().unwrap(),
        rx,
        vec![upstream],
        "istio-demo".into(),
    )
    .await
    .unwrap();
    let m = udp_ask(server.udp_addr, "www.example.org", RecordType::A).await;
    assert_eq!(a_records(&m), vec![("10.213.0.53".parse().unwrap(), 300)]);
    let mut tcp = TcpStream::connect(server.tcp_addr).await.unwrap();
    let m = tcp_ask(&mut tcp, "www.example.org", RecordType::A).await;
    assert_eq!(a_records(&m), vec![("10.213.0.53".parse().unwrap(), 300)]);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn silent_upstream_gives_servfail_after_the_timeout() {
    let (_tx, rx) = watch::channel(table(&[]));
    // Bound but never read: queries vanish.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = dns::serve(
        "127.0.0.1:0".parse().unwrap(),
        rx,
        vec![silent.local_addr().unwrap()],
        "istio-demo".into(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let m = udp_ask(server.udp_addr, "www.example.org", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::ServFail);
    assert!(started.elapsed() >= dns::UPSTREAM_TIMEOUT);
    // Mesh names still answer while upstream is down.
    let m = udp_ask(server.udp_addr, "httpbin", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::NoError);
}

#[tokio::test]
async fn a_new_table_takes_effect_immediately() {
    let (tx, rx) = watch::channel(table(&[]));
    let server = dns::serve(
        "127.0.0.1:0".parse().unwrap(),
        rx,
        vec![],
        "istio-demo".into(),
    )
    .await
    .unwrap();
    let m = udp_ask(server.udp_addr, "sleep", RecordType::A).await;
    assert_eq!(
        m.response_code(),
        ResponseCode::ServFail,
        "unknown, and no upstream"
    );
    tx.send(table(&[(
        "sleep.istio-demo.svc.cluster.local",
        "240.240.0.8",
        "sleep",
        "istio-demo",
    )]))
    .unwrap();
    let m = udp_ask(server.udp_addr, "sleep", RecordType::A).await;
    assert_eq!(
        a_records(&m),
        vec![("240.240.0.8".parse().unwrap(), dns::TTL)]
    );
}

#[tokio::test]
async fn garbage_gets_formerr_not_silence() {
    let (_tx, rx) = watch::channel(table(&[]));
    let server = dns::serve(
        "127.0.0.1:0".parse().unwrap(),
        rx,
        vec![],
        "istio-demo".into(),
    )
    .await
    .unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&[0x12, 0x34, 0xff], server.udp_addr)
        .await
        .unwrap();
    let mut buf = vec![0u8; 512];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.id(), 0x1234);
    assert_eq!(m.response_code(), ResponseCode::FormErr);
}
