//! A router that remembers its routes.
//!
//! axum's `Router` cannot list what it routes, so a service adds its routes
//! through [`Routes`], which records each `(method, path)` as it hands the
//! handler to axum. The record is what [`BoundService::routes`] reports and
//! what the OpenAPI conformance check compares a service's document with: the
//! list cannot drift from the router because it is written by the same call.
//!
//! [`BoundService::routes`]: crate::BoundService::routes

use std::convert::Infallible;
use std::fmt;

use axum::handler::Handler;
use axum::http::{header, Method};
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower::Layer;

/// One route: an HTTP method on a path in axum's `{param}` syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: String,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// An axum `Router` and the list of the routes added to it.
#[derive(Debug)]
pub struct Routes<S = ()> {
    router: Router<S>,
    table: Vec<Route>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    pub fn get<H, T>(self, path: &str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(Method::GET, path, get(handler))
    }

    pub fn post<H, T>(self, path: &str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(Method::POST, path, post(handler))
    }

    /// `GET /openapi.json`: the service's OpenAPI document, as compiled in.
    pub fn openapi(self, document: &'static str) -> Self {
        self.get("/openapi.json", move || async move {
            ([(header::CONTENT_TYPE, "application/json")], document)
        })
    }

    /// Two methods on one path are merged by axum; the same one twice panics
    /// there, at start-up, as it would without the record.
    fn add(mut self, method: Method, path: &str, endpoint: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, endpoint);
        self.table.push(Route {
            method,
            path: path.to_owned(),
        });
        self
    }

    /// Wraps the routes added so far, and only those, in `layer` (axum's
    /// `Router::route_layer`): a middleware for some routes of a service,
    /// like the waiting room of [`crate::admission`] on its costly writes.
    pub fn route_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response: IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Error: Into<Infallible> + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.router = self.router.route_layer(layer);
        self
    }

    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Gives the handlers their state, as `Router::with_state` does.
    pub fn with_state<S2>(self, state: S) -> Routes<S2> {
        Routes {
            router: self.router.with_state(state),
            table: self.table,
        }
    }
}

impl Routes {
    pub fn table(&self) -> &[Route] {
        &self.table
    }

    pub fn into_parts(self) -> (Router, Vec<Route>) {
        (self.router, self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn the_table_lists_exactly_what_the_router_serves() {
        let items = Routes::new()
            .get("/items", || async { "list" })
            .post("/items", || async { "create" });
        let routes = Routes::<()>::new()
            .merge(items)
            .openapi("{\"openapi\": \"3.1.0\"}");
        let listed: Vec<String> = routes.table().iter().map(Route::to_string).collect();
        assert_eq!(
            listed,
            ["GET /items", "POST /items", "GET /openapi.json"].map(str::to_owned)
        );

        let (router, _) = routes.into_parts();
        for (method, path, expected) in [
            (Method::GET, "/items", "list"),
            (Method::POST, "/items", "create"),
        ] {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .unwrap();
            assert_eq!(body, expected);
        }
        let request = Request::get("/openapi.json").body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
