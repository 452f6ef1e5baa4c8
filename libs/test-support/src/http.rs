//! JSON over HTTP as the services' tests read answers: the status and the body
//! as JSON, `null` where the body is not JSON (a 204, a plain-text error).

use anyhow::Context;
use reqwest::{Client, Response};
use serde_json::Value;

/// `GET url`: the status and the JSON body.
pub async fn get_json(client: &Client, url: &str) -> anyhow::Result<(u16, Value)> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let (status, _, body) = read_json(response).await;
    Ok((status, body))
}

/// `POST url` with `body` as JSON: the status and the JSON body.
pub async fn post_json(client: &Client, url: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let (status, _, body) = read_json(response).await;
    Ok((status, body))
}

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
