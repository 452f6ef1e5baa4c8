//! Binding, serving, background workers and graceful shutdown.
//!
//! [`launch`] connects to the service's database, applies its migrations,
//! asks the service to build itself and binds the listener: when it returns,
//! the address is known and connections queue, so callers (tests included)
//! never wait for a server by sleeping. [`BoundService::run_until`] then
//! serves HTTP and runs the workers until the shutdown future resolves or a
//! worker fails, and drains both within the configured grace period.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::{Extension, Router};

use crate::routes::{Route, Routes};
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use sqlx::migrate::Migrator;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::TokenVerifier;
use crate::db::{self, DatabaseReadiness};
use crate::settings::{HttpSettings, ServiceSettings};

/// A dependency that must answer for the service to be ready (`/health/ready`).
pub trait ReadinessCheck: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn check(&self) -> BoxFuture<'_, anyhow::Result<()>>;
}

/// What a service tells service-kit about itself.
pub trait Service: 'static {
    /// The service's name: its binary, its log and trace name, its settings prefix.
    const NAME: &'static str;
    /// Built-in default settings, a TOML document.
    const DEFAULT_SETTINGS: &'static str;
    /// The service's OpenAPI 3.1 document, served at `/openapi.json`.
    const OPENAPI: &'static str;
    /// The service's own settings, beside the shared sections of [`ServiceSettings`].
    type Domain: DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static;

    /// The migrations of the libraries whose tables the service holds (the
    /// outbox, the event store), and its own; applied together in version order.
    const MIGRATIONS: &'static [&'static Migrator];

    /// [`Self::MIGRATIONS`] composed into the one migrator the service applies.
    fn migrator() -> Migrator {
        db::compose_migrators(Self::MIGRATIONS)
    }

    /// Builds the service's routes, readiness checks and workers on a migrated database.
    fn build(
        settings: ServiceSettings<Self::Domain>,
        pool: PgPool,
    ) -> impl Future<Output = anyhow::Result<ServiceApp>> + Send;
}

type WorkerRun = Box<dyn FnOnce(WorkerContext) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// What a background worker is given: the token that tells it to stop.
#[derive(Debug, Clone)]
pub struct WorkerContext {
    pub shutdown: CancellationToken,
}

/// A service's parts: routes, readiness checks and background workers.
pub struct ServiceApp {
    routes: Routes,
    readiness: Vec<Arc<dyn ReadinessCheck>>,
    workers: Vec<(&'static str, WorkerRun)>,
}

impl fmt::Debug for ServiceApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceApp")
            .field("routes", &self.routes.table())
            .field(
                "readiness",
                &self.readiness.iter().map(|c| c.name()).collect::<Vec<_>>(),
            )
            .field(
                "workers",
                &self
                    .workers
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ServiceApp {
    pub fn new(routes: Routes) -> Self {
        Self {
            routes,
            readiness: Vec::new(),
            workers: Vec::new(),
        }
    }

    /// Adds routes beside the service's own (the dead-letter endpoints, say).
    pub fn routes(mut self, routes: Routes) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    pub fn readiness(mut self, check: impl ReadinessCheck) -> Self {
        self.readiness.push(Arc::new(check));
        self
    }

    /// A background task run for the life of the service. It must return soon
    /// after `shutdown` is cancelled; returning an error stops the whole service,
    /// because a service whose relay or consumer died must not keep answering "ready".
    pub fn worker<F, Fut>(mut self, name: &'static str, run: F) -> Self
    where
        F: FnOnce(WorkerContext) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.workers
            .push((name, Box::new(move |context| Box::pin(run(context)))));
        self
    }
}

/// Connects, migrates, builds and binds a service; see the module docs.
pub async fn launch<S: Service>(
    settings: ServiceSettings<S::Domain>,
) -> anyhow::Result<BoundService> {
    let verifier = TokenVerifier::from_settings(&settings.auth)
        .with_context(|| format!("set up the {} service's token verification", S::NAME))?;
    let pool = db::connect(&settings.database, S::NAME).await?;
    db::migrate(&pool, &S::migrator()).await?;
    let http_settings = settings.http.clone();
    let app = S::build(settings, pool.clone())
        .await
        .with_context(|| format!("build the {} service", S::NAME))?;
    let mut readiness = app.readiness;
    readiness.insert(0, Arc::new(DatabaseReadiness::new(pool)));
    let (router, routes) = app
        .routes
        .merge(Routes::new().openapi(S::OPENAPI))
        .merge(crate::http::operational(readiness))
        .into_parts();
    let router = crate::http::stack(router.layer(Extension(verifier)), &http_settings);
    let listener = TcpListener::bind(http_settings.address())
        .await
        .with_context(|| format!("bind {}", http_settings.address()))?;
    let local_addr = listener.local_addr().context("read the bound address")?;
    tracing::info!(service = S::NAME, address = %local_addr, "listening");
    Ok(BoundService {
        name: S::NAME,
        listener,
        local_addr,
        router,
        routes,
        workers: app.workers,
        http_settings,
    })
}

/// A service whose listener is bound; [`run_until`](Self::run_until) serves it.
pub struct BoundService {
    name: &'static str,
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    routes: Vec<Route>,
    workers: Vec<(&'static str, WorkerRun)>,
    http_settings: HttpSettings,
}

impl fmt::Debug for BoundService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundService")
            .field("name", &self.name)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl BoundService {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Every route the service answers, its own and the shared ones: what its
    /// OpenAPI document must describe.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Serves until `shutdown` resolves or a worker fails, then drains HTTP
    /// connections and workers within the grace period.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let worker_failure: Arc<Mutex<Option<anyhow::Error>>> = Arc::default();

        for (worker, run) in self.workers {
            let context = WorkerContext {
                shutdown: stop.child_token(),
            };
            let stop = stop.clone();
            let worker_failure = Arc::clone(&worker_failure);
            tracker.spawn(async move {
                match run(context).await {
                    Ok(()) => tracing::info!(worker, "worker stopped"),
                    Err(error) => {
                        tracing::error!(
                            worker,
                            error = format!("{error:#}"),
                            "worker failed; stopping the service"
                        );
                        if let Ok(mut slot) = worker_failure.lock() {
                            slot.get_or_insert(error.context(format!("worker {worker} failed")));
                        }
                        stop.cancel();
                    }
                }
            });
        }
        tracker.close();

        let signal_stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => tracing::info!("shutdown requested"),
                () = signal_stop.cancelled() => {}
            }
            signal_stop.cancel();
        });

        let server = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(stop.clone().cancelled_owned());
        let mut server = tokio::spawn(server.into_future());
        let server_outcome = tokio::select! {
            outcome = &mut server => Some(outcome),
            () = stop.cancelled() => None,
        };
        // Whatever ended the serving, everything else stops too.
        stop.cancel();
        let grace = self.http_settings.shutdown_grace();
        let deadline = tokio::time::Instant::now() + grace;
        let server_outcome = match server_outcome {
            Some(outcome) => outcome,
            None => match tokio::time::timeout_at(deadline, &mut server).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    tracing::warn!(
                        grace_ms = grace.as_millis() as u64,
                        "http connections still open at the deadline; closing them"
                    );
                    server.abort();
                    Ok(Ok(()))
                }
            },
        };
        if tokio::time::timeout_at(deadline, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "workers still running at the deadline"
            );
        }
        tracing::info!(service = self.name, "stopped");

        server_outcome
            .context("join the http server task")?
            .context("serve http")?;
        let failure = worker_failure.lock().ok().and_then(|mut slot| slot.take());
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
