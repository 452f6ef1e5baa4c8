//! JSON over HTTP as the services' tests read answers: the status and the body
//! as JSON, `null` where the body is not JSON (a 204, a plain-text error).

use reqwest::Response;
use serde_json::Value;

/// The status, content type and JSON body of an answer.
pub async fn read_json(response: Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let content_type = content_type(&response);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

/// The answer's `content-type`, empty when it has none.
pub fn content_type(response: &Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The string `field` of every object in the JSON array `list`, in order: the
/// event types of a history, the step names of a routing slip. Panics where
/// `list` is not an array or an item's `field` is not a string.
pub fn strings_of<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    let Some(items) = list.as_array() else {
        panic!("not an array: {list}");
    };
    items
        .iter()
        .map(|item| match item[field].as_str() {
            Some(value) => value,
            None => panic!("no string {field:?} in {item}"),
        })
        .collect()
}
