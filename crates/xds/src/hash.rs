//! A content hash of a resource that does not depend on encoding order.
//!
//! prost encodes map fields (`Struct.fields`, `Metadata.filter_metadata`, …) in
//! `HashMap` order, so two encodings of the same resource can differ byte for byte.
//! Delta xDS compares resource versions to decide what to resend; hashing the raw
//! bytes would resend unchanged resources at random. This walks the message through
//! its descriptor instead, sorting map entries and descending into `Any`.

use prost_reflect::{DynamicMessage, MapKey, ReflectMessage, Value};

use crate::json::descriptor_pool;
use crate::Any;

/// FNV-1a, 64 bit: stable across builds and platforms, which `DefaultHasher` is not
/// promised to be (clients keep versions across control-plane restarts).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn tag(&mut self, tag: u8) {
        self.bytes(&[tag]);
    }
    fn len(&mut self, n: usize) {
        self.bytes(&(n as u64).to_le_bytes());
    }
    fn tagged(&mut self, tag: u8, bytes: &[u8]) {
        self.tag(tag);
        self.bytes(bytes);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.bytes(s.as_bytes());
    }
}

/// The version string Delta xDS sends for a resource: 16 hex digits of its content hash.
pub fn resource_version(any: &Any) -> String {
    format!("{:016x}", content_hash(any))
}

/// A hash of the resource's content, equal for equal messages however they were encoded.
/// Types unknown to `envoy-types` fall back to hashing their bytes.
pub fn content_hash(any: &Any) -> u64 {
    let mut h = Fnv::new();
    hash_any(&mut h, &any.type_url, &any.value);
    h.0
}

fn hash_any(h: &mut Fnv, type_url: &str, value: &[u8]) {
    h.str(type_url);
    let name = type_url.rsplit_once('/').map_or(type_url, |(_, n)| n);
    let decoded = descriptor_pool()
        .ok()
        .and_then(|pool| pool.get_message_by_name(name))
        .and_then(|desc| DynamicMessage::decode(desc, value).ok());
    match decoded {
        Some(message) => hash_message(h, &message),
        None => {
            h.tag(0xff);
            h.len(value.len());
            h.bytes(value);
        }
    }
}

fn hash_message(h: &mut Fnv, message: &DynamicMessage) {
    if message.descriptor().full_name() == "google.protobuf.Any" {
        let type_url = message
            .get_field_by_name("type_url")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let value = message
            .get_field_by_name("value")
            .and_then(|v| v.as_bytes().cloned())
            .unwrap_or_default();
        hash_any(h, &type_url, &value);
        return;
    }
    h.tag(b'{');
    // Fields come in field-number order.
    for (field, value) in message.fields() {
        h.bytes(&field.number().to_le_bytes());
        hash_value(h, value);
    }
    // Unknown fields are kept as bytes; they are rare and already canonical per field.
    let unknown = message.unknown_fields().fold(Vec::new(), |mut buf, f| {
        f.encode(&mut buf);
        buf
    });
    h.len(unknown.len());
    h.bytes(&unknown);
    h.tag(b'}');
}

fn hash_key(h: &mut Fnv, key: &MapKey) {
    match key {
        MapKey::Bool(b) => h.bytes(&[u8::from(*b)]),
        MapKey::I32(v) => h.bytes(&v.to_le_bytes()),
        MapKey::I64(v) => h.bytes(&v.to_le_bytes()),
        MapKey::U32(v) => h.bytes(&v.to_le_bytes()),
        MapKey::U64(v) => h.bytes(&v.to_le_bytes()),
        MapKey::String(s) => h.str(s),
    }
}

fn hash_value(h: &mut Fnv, value: &Value) {
    match value {
        Value::Bool(b) => h.bytes(&[1, u8::from(*b)]),
        Value::I32(v) => h.tagged(2, &v.to_le_bytes()),
        Value::I64(v) => h.tagged(3, &v.to_le_bytes()),
        Value::U32(v) => h.tagged(4, &v.to_le_bytes()),
        Value::U64(v) => h.tagged(5, &v.to_le_bytes()),
        Value::F32(v) => h.tagged(6, &v.to_bits().to_le_bytes()),
        Value::F64(v) => h.tagged(7, &v.to_bits().to_le_bytes()),
        Value::String(s) => {
            h.tag(8);
            h.str(s);
        }
        Value::Bytes(b) => {
            h.tag(9);
            h.len(b.len());
            h.bytes(b);
        }
        Value::EnumNumber(v) => h.tagged(10, &v.to_le_bytes()),
        Value::Message(m) => {
            h.tag(11);
            hash_message(h, m);
        }
        Value::List(items) => {
            h.tag(12);
            h.len(items.len());
            items.iter().for_each(|v| hash_value(h, v));
        }
        Value::Map(map) => {
            h.tag(13);
            h.len(map.len());
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in entries {
                hash_key(h, k);
                hash_value(h, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack;
    use crate::pb::envoy::config::cluster::v3::Cluster;
    use crate::pb::envoy::config::core::v3::Metadata;
    use crate::pb::google::protobuf::{value::Kind, Struct, Value as PbValue};

    fn cluster(keys: &[&str]) -> Cluster {
        let fields = keys
            .iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    PbValue {
                        kind: Some(Kind::StringValue(format!("v-{k}"))),
                    },
                )
            })
            .collect();
        Cluster {
            name: "c".into(),
            metadata: Some(Metadata {
                filter_metadata: [("istio".to_owned(), Struct { fields })].into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn equal_messages_hash_equal_whatever_the_map_order() {
        let keys: Vec<String> = (0..32).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let reversed: Vec<&str> = refs.iter().rev().copied().collect();
        let a = pack(&cluster(&refs));
        let b = pack(&cluster(&reversed));
        assert_eq!(resource_version(&a), resource_version(&b));
        let c = pack(&cluster(&refs[1..]));
        assert_ne!(resource_version(&a), resource_version(&c));
    }

    #[test]
    fn unknown_types_hash_their_bytes() {
        let a = Any {
            type_url: "type.googleapis.com/x.Y".into(),
            value: vec![1, 2, 3],
        };
        let b = Any {
            value: vec![1, 2, 4],
            ..a.clone()
        };
        assert_ne!(content_hash(&a), content_hash(&b));
        assert_eq!(content_hash(&a), content_hash(&a.clone()));
    }
}
