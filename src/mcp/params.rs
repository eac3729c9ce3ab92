//! Tool arguments as agents send them, checked here rather than by rmcp's own extractor: that
//! one drops unknown arguments without a word (`"key": "deploy"` saved a connection with no key)
//! and answers a missing or mistyped one with bare text. Here every such mistake is a tool error
//! with structured content naming the argument and the arguments the tool accepts.

use rmcp::ErrorData;
use rmcp::handler::server::common::{FromContextPart, schema_for_type};
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{CallToolResult, JsonObject};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::reply::fail_with;
use super::schema::{compact, misfit};

/// A tool's arguments, or the tool error that says what was wrong with them. The `#[tool]`
/// macro finds the input schema through this type's name, as with rmcp's own `Parameters`.
pub struct Parameters<T>(pub Result<T, CallToolResult>);

impl<T: JsonSchema> JsonSchema for Parameters<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

impl<S, T> FromContextPart<ToolCallContext<'_, S>> for Parameters<T>
where
    T: DeserializeOwned + JsonSchema + 'static,
{
    fn from_context_part(context: &mut ToolCallContext<S>) -> Result<Self, ErrorData> {
        let args = context.arguments.take().unwrap_or_default();
        Ok(Self(parse::<T>(args)))
    }
}

/// `T`'s compacted input schema.
pub fn schema<T: JsonSchema + 'static>() -> JsonObject {
    compact(&schema_for_type::<T>())
}

/// Parses `args` as `T`, refusing arguments `T` does not have.
pub fn parse<T: DeserializeOwned + JsonSchema + 'static>(
    args: JsonObject,
) -> Result<T, CallToolResult> {
    let schema = schema::<T>();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let accepted: Vec<String> = props.keys().cloned().collect();
    if let Some(unknown) = args.keys().find(|k| !props.contains_key(*k)) {
        let guess: Vec<String> = accepted
            .iter()
            .filter(|a| similar(a, unknown))
            .map(|g| format!("`{g}`"))
            .take(2)
            .collect();
        let mut message = format!(
            "unknown argument `{unknown}`; this tool accepts {}",
            list(&accepted)
        );
        if !guess.is_empty() {
            message.push_str(&format!(" (did you mean {}?)", guess.join(" or ")));
        }
        return Err(refused(message, unknown, &accepted));
    }
    for (name, value) in &args {
        if let Some(why) = props.get(name).and_then(|s| misfit(s, value)) {
            return Err(refused(format!("argument `{name}` {why}"), name, &accepted));
        }
    }
    serde_json::from_value::<T>(Value::Object(args)).map_err(|e| {
        let text = e.to_string();
        match missing_field(&text) {
            Some(a) => refused(
                format!(
                    "missing argument `{a}`; this tool accepts {}",
                    list(&accepted)
                ),
                &a,
                &accepted,
            ),
            None => refused(text, "", &accepted),
        }
    })
}

fn refused(message: String, argument: &str, accepted: &[String]) -> CallToolResult {
    let mut fields = serde_json::Map::new();
    if !argument.is_empty() {
        fields.insert("argument".into(), Value::from(argument));
    }
    fields.insert("accepted".into(), Value::from(accepted.to_vec()));
    fail_with("invalid_argument", message, fields)
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `user` for `username`, `key` for `keyName`, `connection` for `connectionId`.
fn similar(accepted: &str, unknown: &str) -> bool {
    let (a, u) = (accepted.to_lowercase(), unknown.to_lowercase());
    u.len() >= 3 && (a.starts_with(&u) || u.starts_with(&a))
}

/// serde's "missing field `op`".
fn missing_field(text: &str) -> Option<String> {
    let rest = text.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::args::ConnArgs;
    use serde_json::json;

    fn args(v: Value) -> JsonObject {
        match v {
            Value::Object(m) => m,
            _ => JsonObject::new(),
        }
    }

    fn error(r: Result<ConnArgs, CallToolResult>) -> Value {
        match r {
            Ok(_) => Value::Null,
            Err(e) => e.structured_content.unwrap_or_default()["error"].clone(),
        }
    }

    #[test]
    fn unknown_arguments_are_refused_by_name() {
        let e = error(parse::<ConnArgs>(args(
            json!({"op": "save", "name": "w", "key": "deploy"}),
        )));
        assert_eq!(e["argument"], "key");
        assert!(
            e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("keyName"),
            "{e}"
        );
        assert!(
            e["accepted"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("keyName")))
        );
    }

    #[test]
    fn missing_and_mistyped_arguments_name_the_argument() {
        let e = error(parse::<ConnArgs>(args(json!({"name": "w"}))));
        assert_eq!(e["argument"], "op", "{e}");
        let e = error(parse::<ConnArgs>(args(json!({"op": "list", "port": "x"}))));
        assert_eq!(e["argument"], "port", "{e}");
        let e = error(parse::<ConnArgs>(args(json!({"op": "lst"}))));
        assert_eq!(e["argument"], "op", "{e}");
    }
}
