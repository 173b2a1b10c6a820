//! Istio's TCP metadata exchange: over an mTLS connection whose ALPN is
//! `istio-peer-exchange`, each side sends one preamble before any application bytes —
//! a 4-byte magic, a 4-byte length (both big-endian), then a serialized
//! `google.protobuf.Any` wrapping a `Struct` with `x-envoy-peer-metadata` (the node
//! metadata) and `x-envoy-peer-metadata-id` (the node id). This module is the codec;
//! the data plane decides when to write and read it.

use prost::Message;
use prost_types::value::Kind;
use prost_types::{Any, Struct, Value};

use super::peer::{pod_name_from_node_id, PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER};
use super::PeerMetadata;

/// The ALPN value both sides offer to run the exchange.
pub const TCP_EXCHANGE_ALPN: &str = "istio-peer-exchange";

/// First four bytes of a preamble.
pub const MAGIC: u32 = 0x3D23_0467;

/// Preambles larger than this are treated as garbage (node metadata is a few KB).
const MAX_PREAMBLE: usize = 1 << 20;

const STRUCT_TYPE_URL: &str = "type.googleapis.com/google.protobuf.Struct";

/// This proxy's preamble.
pub fn encode(local: &PeerMetadata, node_id: &str) -> Vec<u8> {
    let pod = pod_name_from_node_id(node_id).unwrap_or(&local.workload);
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(
        PEER_METADATA_HEADER.to_string(),
        Value {
            kind: Some(Kind::StructValue(local.to_struct(pod))),
        },
    );
    if !node_id.is_empty() {
        fields.insert(
            PEER_METADATA_ID_HEADER.to_string(),
            Value {
                kind: Some(Kind::StringValue(node_id.to_string())),
            },
        );
    }
    let any = Any {
        type_url: STRUCT_TYPE_URL.to_string(),
        value: Struct { fields }.encode_to_vec(),
    };
    let body = any.encode_to_vec();
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// What the bytes received so far hold.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// Read more and try again.
    NeedMore,
    /// A whole preamble: the peer (if its metadata parsed), its node id, and how many
    /// bytes it took (what follows is application data).
    Peer {
        peer: Option<Box<PeerMetadata>>,
        id: Option<String>,
        consumed: usize,
    },
    /// Not a preamble (the peer runs no exchange): treat every byte as application data.
    Invalid,
}

/// Parses a peer's preamble at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded {
    let magic = MAGIC.to_be_bytes();
    let head = buf.len().min(4);
    if buf[..head] != magic[..head] {
        return Decoded::Invalid;
    }
    if buf.len() < 8 {
        return Decoded::NeedMore;
    }
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if len > MAX_PREAMBLE {
        return Decoded::Invalid;
    }
    if buf.len() < 8 + len {
        return Decoded::NeedMore;
    }
    let consumed = 8 + len;
    let Ok(any) = Any::decode(&buf[8..consumed]) else {
        return Decoded::Invalid;
    };
    let Ok(s) = Struct::decode(any.value.as_slice()) else {
        return Decoded::Invalid;
    };
    let peer = match s
        .fields
        .get(PEER_METADATA_HEADER)
        .and_then(|v| v.kind.as_ref())
    {
        Some(Kind::StructValue(meta)) => Some(Box::new(PeerMetadata::from_node_metadata(meta))),
        _ => None,
    };
    let id = match s
        .fields
        .get(PEER_METADATA_ID_HEADER)
        .and_then(|v| v.kind.as_ref())
    {
        Some(Kind::StringValue(id)) => Some(id.clone()),
        _ => None,
    };
    Decoded::Peer { peer, id, consumed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> PeerMetadata {
        PeerMetadata {
            workload: "mysql-client".into(),
            namespace: "db".into(),
            cluster: "Kubernetes".into(),
            service_account: "client".into(),
            labels: [("app".to_string(), "client".to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        }
        .with_derived_labels()
    }

    #[test]
    fn round_trip_with_trailing_application_data() {
        let id = "sidecar~10.213.0.4~mysql-client-7d9.db~db.svc.cluster.local";
        let mut wire = encode(&local(), id);
        assert_eq!(&wire[..4], &[0x3D, 0x23, 0x04, 0x67]);
        let len = u32::from_be_bytes(wire[4..8].try_into().unwrap()) as usize;
        assert_eq!(wire.len(), 8 + len);
        let preamble_len = wire.len();
        wire.extend_from_slice(b"\x0a\x00app");
        // Every prefix shorter than the preamble asks for more.
        for cut in 0..preamble_len {
            assert_eq!(decode(&wire[..cut]), Decoded::NeedMore, "cut at {cut}");
        }
        match decode(&wire) {
            Decoded::Peer {
                peer,
                id: got,
                consumed,
            } => {
                assert_eq!(consumed, preamble_len);
                assert_eq!(got.as_deref(), Some(id));
                let p = peer.expect("metadata");
                assert_eq!(p.workload, "mysql-client");
                assert_eq!(p.namespace, "db");
                assert_eq!(p.app, "client");
                assert_eq!(p.service_account, "client");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_protocols_are_not_mistaken_for_a_preamble() {
        assert_eq!(decode(b"GET / HTTP/1.1\r\n"), Decoded::Invalid);
        assert_eq!(decode(b"G"), Decoded::Invalid);
        assert_eq!(decode(&[0x3D, 0x23]), Decoded::NeedMore);
        assert_eq!(decode(&[0x3D, 0x23, 0x04, 0x68, 0]), Decoded::Invalid);
        let mut huge = MAGIC.to_be_bytes().to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&huge), Decoded::Invalid);
        let mut junk = MAGIC.to_be_bytes().to_vec();
        junk.extend_from_slice(&3u32.to_be_bytes());
        junk.extend_from_slice(&[0xff, 0xff, 0xff]);
        assert_eq!(decode(&junk), Decoded::Invalid);
    }
}
