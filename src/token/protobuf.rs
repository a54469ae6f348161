//! The few protobuf messages jwt-guard writes: `google.protobuf.Value` (the payload Envoy's
//! `header_to_metadata` turns into metadata) and Envoy's `DeclarePropertyArguments`. Encoding
//! only, proto3 wire format. Our own rather than prost: prost and prost-types added 26 KB to the
//! `.wasm`, most of its 1 MiB budget's headroom, for two messages of a few fields.

use serde_json::Value;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u8, wire: u8) {
    varint(out, u64::from(field << 3 | wire));
}

pub fn bytes_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    tag(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub fn varint_field(out: &mut Vec<u8>, field: u8, v: u64) {
    tag(out, field, VARINT);
    varint(out, v);
}

/// A message field: `body` writes the message into a buffer of its own, then it is framed.
fn message_field(out: &mut Vec<u8>, field: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    bytes_field(out, field, &inner);
}

/// `google.protobuf.Value` for a JSON value (the oneof: 1 null, 2 number, 3 string, 4 bool,
/// 5 struct, 6 list). A oneof member is written even when it holds its default.
pub fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => varint_field(out, 1, 0),
        Value::Number(n) => {
            tag(out, 2, FIXED64);
            out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
        }
        Value::String(s) => bytes_field(out, 3, s.as_bytes()),
        Value::Bool(b) => varint_field(out, 4, u64::from(*b)),
        Value::Object(map) => message_field(out, 5, |s| struct_fields(s, map.iter().map(|(k, v)| (k.as_str(), v)))),
        Value::Array(items) => message_field(out, 6, |l| list_values(l, items.iter())),
    }
}

/// `Struct.fields`: a map, each entry a message of key (1) and `Value` (2).
fn struct_fields<'a>(out: &mut Vec<u8>, fields: impl Iterator<Item = (&'a str, &'a Value)>) {
    for (k, v) in fields {
        message_field(out, 1, |e| {
            bytes_field(e, 1, k.as_bytes());
            message_field(e, 2, |inner| value(inner, v));
        });
    }
}

fn list_values<'a>(out: &mut Vec<u8>, items: impl Iterator<Item = &'a Value>) {
    for item in items {
        message_field(out, 1, |v| value(v, item));
    }
}
