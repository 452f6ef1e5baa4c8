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
