//! Reading protobuf-JSON as Envoy and Istio write it: either spelling of a field
//! (`and_rules` or `andRules`), and durations as `"5s"` or `{seconds: 5}`.

use serde_json::Value;

/// The field by its snake_case name, or by its lowerCamelCase JSON name.
pub fn field<'v>(v: &'v Value, snake: &str) -> Option<&'v Value> {
    v.get(snake).or_else(|| v.get(camel(snake).as_str()))
}

pub fn str_field<'v>(v: &'v Value, snake: &str) -> Option<&'v str> {
    field(v, snake).and_then(Value::as_str)
}

pub fn list<'v>(v: &'v Value, snake: &str) -> &'v [Value] {
    field(v, snake).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

pub fn strings(v: &Value, snake: &str) -> Vec<String> {
    list(v, snake).iter().filter_map(|x| x.as_str().map(str::to_string)).collect()
}

pub fn bool_field(v: &Value, snake: &str) -> bool {
    field(v, snake).and_then(Value::as_bool).unwrap_or(false)
}

pub fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut up = false;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A google.protobuf.Duration as proto-JSON (`"1.5s"`) from either form.
pub fn duration(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(_) => {
            let secs = v.get("seconds").and_then(|s| s.as_u64().or_else(|| s.as_str()?.parse().ok())).unwrap_or(0);
            let nanos = v.get("nanos").and_then(Value::as_u64).unwrap_or(0);
            Some(if nanos == 0 { format!("{secs}s") } else { format!("{secs}.{nanos:09}s") })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_spellings_and_durations() {
        let v = json!({"andRules": 1, "url_path": 2});
        assert_eq!(field(&v, "and_rules"), Some(&json!(1)));
        assert_eq!(field(&v, "url_path"), Some(&json!(2)));
        assert_eq!(duration(&json!("5s")).as_deref(), Some("5s"));
        assert_eq!(duration(&json!({"seconds": 300})).as_deref(), Some("300s"));
        assert_eq!(duration(&json!({"seconds": "1", "nanos": 500000000})).as_deref(), Some("1.500000000s"));
    }
}
