//! YAML (and JSON, which is YAML) documents as `serde_json::Value`s, so the importer reads one
//! shape whatever the input was. Envoy and Istio configurations only use strings, numbers,
//! booleans, lists and maps.

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Every document of a YAML stream (`---` separated); empty documents are left out.
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    docs.iter().filter(|d| !matches!(d, Yaml::Null)).map(to_json).collect()
}

fn to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::Number((*i).into()),
        Yaml::Real(r) => match r.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => Value::String(r.clone()),
        },
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Real(r) => r.clone(),
                    other => return Err(format!("a map key that is not a scalar: {other:?}")),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err("an unresolved YAML alias".to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn streams_anchors_and_json() {
        let docs = documents("a: &x {b: [1, 2.5, true, ~]}\nc: *x\n---\n---\n{\"d\": \"e\"}\n").unwrap();
        assert_eq!(
            docs,
            vec![json!({"a": {"b": [1, 2.5, true, null]}, "c": {"b": [1, 2.5, true, null]}}), json!({"d": "e"})]
        );
        assert!(documents("a: 1\na: 2\n").is_err(), "duplicate keys are an error, not the last one winning");
        assert!(documents("a: [\n").is_err());
    }
}
