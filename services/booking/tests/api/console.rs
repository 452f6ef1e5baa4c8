//! The operator console's page: served to anyone (it carries no data),
//! under a policy that lets it run only its own scripts and talk only to
//! booking; its errors are problems like every other answer of the service.

use booking::Booking;
use test_support::TestApp;

#[tokio::test]
async fn the_console_and_its_files_are_served_without_a_token_under_a_strict_policy() {
    let booking = TestApp::<Booking>::spawn().await;
    let client = reqwest::Client::new();

    let page = client.get(booking.url("/console")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    let policy = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert_eq!(header("x-content-type-options"), "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"src="/console/console.js""#), "{html}");

    for (asset, content_type) in [
        ("console.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
    ] {
        let response = client
            .get(booking.url(&format!("/console/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(
            test_support::http::content_type(&response),
            content_type,
            "{asset}"
        );
    }
}

#[tokio::test]
async fn a_missing_console_file_or_a_wrong_method_is_a_problem() {
    let booking = TestApp::<Booking>::spawn().await;
    for (method, path, expected) in [
        (reqwest::Method::GET, "/console/secrets.js", 404),
        (reqwest::Method::GET, "/console/..%2Fopenapi.json", 404),
        (reqwest::Method::POST, "/console", 405),
    ] {
        let (status, content_type, problem) = booking
            .send(booking.request_as(method.clone(), path, None))
            .await;
        assert_eq!(status, expected, "{method} {path}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{method} {path}");
        assert_eq!(problem["status"], expected, "{method} {path}");
    }
}
