//! The tools' input schemas, compacted for agents' contexts, and checked against what agents
//! send.
//!
//! schemars writes a full JSON Schema 2020-12 document per tool: `$schema`, a `title`, `$defs`
//! with `$ref`s, `oneOf` lists for enums, `["string","null"]` for every optional argument, and
//! `format`/`minimum` for every integer. Agents need the argument names, their plain types,
//! the allowed values and the descriptions; [`compact`] keeps exactly that, which is less than
//! half the bytes for the same tools and arguments.

use serde_json::{Map, Value};

/// A compacted copy of a schemars input schema.
pub fn compact(schema: &Map<String, Value>) -> Map<String, Value> {
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match node(&Value::Object(schema.clone()), &defs, 0) {
        Value::Object(mut m) => {
            m.remove("title");
            m
        }
        _ => Map::new(),
    }
}

fn node(v: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    if depth > 16 {
        return Value::Object(Map::new());
    }
    // A reference: inline the definition (ours are small and not recursive).
    if let Some(target) = m.get("$ref").and_then(Value::as_str) {
        let name = target.rsplit('/').next().unwrap_or_default();
        let mut inlined = match defs.get(name).map(|d| node(d, defs, depth + 1)) {
            Some(Value::Object(d)) => d,
            _ => Map::new(),
        };
        // The type's own doc ("`ssh_conn` operations.") says less than the property's.
        inlined.remove("title");
        inlined.remove("description");
        if let Some(Value::String(d)) = m.get("description") {
            inlined.insert("description".into(), Value::String(d.clone()));
        }
        return Value::Object(inlined);
    }
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "$schema" | "$defs" | "format" | "minimum" | "maximum" | "default" => {}
            "type" => {
                out.insert(k.clone(), plain_type(v));
            }
            "properties" => {
                let props = v
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(name, s)| (name.clone(), node(s, defs, depth + 1)))
                            .collect::<Map<_, _>>()
                    })
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "oneOf" | "anyOf" => {
                let alternatives: Vec<Value> = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| node(s, defs, depth + 1))
                            .filter(|s| s.get("type") != Some(&Value::from("null")))
                            .collect()
                    })
                    .unwrap_or_default();
                merge_alternatives(&mut out, alternatives);
            }
            "items" | "additionalProperties" => {
                out.insert(k.clone(), node(v, defs, depth + 1));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// `["string","null"]` is `"string"`: every argument but the required ones may be left out.
fn plain_type(t: &Value) -> Value {
    match t {
        Value::Array(a) => {
            let kept: Vec<&Value> = a.iter().filter(|t| *t != "null").collect();
            match kept.as_slice() {
                [one] => (*one).clone(),
                _ => Value::Array(kept.into_iter().cloned().collect()),
            }
        }
        other => other.clone(),
    }
}

/// An enum's `oneOf` of `const`s becomes one `enum`; other alternatives stay an `anyOf`.
fn merge_alternatives(out: &mut Map<String, Value>, alternatives: Vec<Value>) {
    let consts: Option<Vec<Value>> = alternatives
        .iter()
        .map(|a| a.get("const").cloned().or_else(|| single_enum(a)))
        .collect();
    match (consts, alternatives.len()) {
        (Some(values), n) if n > 0 => {
            out.insert("type".into(), Value::from("string"));
            out.insert("enum".into(), Value::Array(values));
        }
        (_, 1) => {
            if let Some(Value::Object(one)) = alternatives.into_iter().next() {
                for (k, v) in one {
                    out.entry(k).or_insert(v);
                }
            }
        }
        _ => {
            out.insert("anyOf".into(), Value::Array(alternatives));
        }
    }
}

fn single_enum(a: &Value) -> Option<Value> {
    match a.get("enum")?.as_array()?.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Why `value` does not fit the compacted property schema `s`, if it does not.
pub fn misfit(s: &Value, value: &Value) -> Option<String> {
    if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
        return (!allowed.contains(value)).then(|| {
            format!(
                "must be one of {}, not {value}",
                allowed
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    }
    if let Some(alternatives) = s.get("anyOf").and_then(Value::as_array) {
        return alternatives
            .iter()
            .all(|a| misfit(a, value).is_some())
            .then(|| format!("must be {}, not {value}", describe(s)));
    }
    let fits = match s.get("type").and_then(Value::as_str) {
        Some("string") => value.is_string(),
        Some("integer") => value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => match (value.as_array(), s.get("items")) {
            (Some(items), Some(item_schema)) => {
                items.iter().all(|i| misfit(item_schema, i).is_none())
            }
            (Some(_), None) => true,
            (None, _) => false,
        },
        Some("object") => value.is_object(),
        _ => true,
    };
    (!fits).then(|| format!("must be {}, not {value}", describe(s)))
}

fn describe(s: &Value) -> String {
    if let Some(alternatives) = s.get("anyOf").and_then(Value::as_array) {
        return alternatives
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join(" or ");
    }
    match s.get("type").and_then(Value::as_str) {
        Some("integer") => "a whole number (0 or more)".into(),
        Some("array") => match s.get("items") {
            Some(i) => format!("a list of {}s", describe(i)),
            None => "a list".into(),
        },
        Some("object") => "an object".into(),
        Some(t) => format!("a {t}"),
        None => "a value".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn optional_types_refs_and_enums_become_plain() {
        let s = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "ConnArgs",
            "type": "object",
            "properties": {
                "op": {"$ref": "#/$defs/ConnOp"},
                "port": {"type": ["integer", "null"], "format": "uint16", "minimum": 0, "maximum": 65535, "description": "SSH port"},
                "command": {"anyOf": [{"$ref": "#/$defs/CommandArg"}, {"type": "null"}]}
            },
            "required": ["op"],
            "$defs": {
                "ConnOp": {"oneOf": [{"type": "string", "const": "list", "description": "All"}, {"type": "string", "const": "test"}]},
                "CommandArg": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
            }
        });
        let c = Value::Object(compact(s.as_object().expect("object")));
        assert_eq!(
            c,
            json!({
                "type": "object",
                "properties": {
                    "op": {"type": "string", "enum": ["list", "test"]},
                    "port": {"type": "integer", "description": "SSH port"},
                    "command": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
                },
                "required": ["op"]
            })
        );
        assert!(misfit(&c["properties"]["port"], &json!("22")).is_some());
        assert!(misfit(&c["properties"]["port"], &json!(22)).is_none());
        assert!(misfit(&c["properties"]["op"], &json!("lst")).is_some());
        assert!(misfit(&c["properties"]["command"], &json!(["a", "b"])).is_none());
        assert!(misfit(&c["properties"]["command"], &json!(5)).is_some());
    }
}
