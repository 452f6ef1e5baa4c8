use reqwest::Method;
use uuid::Uuid;

use crate::helpers::{NotificationApi, TestNotification};

#[tokio::test]
async fn listing_notifications_without_a_valid_booking_id_is_a_problem() {
    let app = TestNotification::spawn().await;

    for path in [
        "/notifications",
        "/notifications?booking_id=",
        "/notifications?booking_id=not-a-uuid",
        "/notifications?customer=1",
    ] {
        let (status, content_type, problem) = app.send(app.request(Method::GET, path)).await;

        assert_eq!(status, 400, "{path}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{path}");
        assert_eq!(problem["status"], 400, "{path}: {problem}");
        assert_eq!(
            problem["type"], "/problems/invalid-query",
            "{path}: {problem}"
        );
    }
}

#[tokio::test]
async fn a_booking_without_messages_has_an_empty_list() {
    let app = TestNotification::spawn().await;

    let items = app.notifications(Uuid::now_v7()).await;

    assert!(items.is_empty());
}

#[tokio::test]
async fn the_openapi_document_describes_the_endpoints() {
    let app = TestNotification::spawn().await;

    let (status, content_type, document) =
        app.send(app.request(Method::GET, "/openapi.json")).await;

    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    assert_eq!(document["openapi"], "3.1.0");
    for path in ["/notifications", "/openapi.json", "/dead-letters"] {
        assert!(
            document["paths"][path].is_object(),
            "{path} is not documented"
        );
    }
}
