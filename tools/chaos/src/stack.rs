//! The private stack: per invocation a Postgres cluster and a Kafka broker of
//! the harness's own; per run a fresh database on that cluster, a fresh topic
//! prefix on that broker, and the four services started anew, each reaching
//! Postgres through a link of its own (a loopback proxy the `cut-database`
//! fault cuts).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use secrecy::SecretString;
use service_kit::db::SchemaOwner;
use sqlx::{Connection, PgConnection};
use test_support::broker::PrivateBroker;
use test_support::ports::free_port;
use test_support::proxy::CuttableProxy;

use crate::postgres::PrivateCluster;
use crate::services::{Service, ServiceProcess, StackAddresses};

/// What lives for the whole invocation.
#[derive(Debug)]
pub struct Infrastructure {
    pub postgres: PrivateCluster,
    pub broker: PrivateBroker,
    /// The invocation's own token issuer, booking's service token and
    /// fingerprint key (`service_kit::auth::development::prepare`).
    pub auth_dir: PathBuf,
}

impl Infrastructure {
    pub async fn start(out_dir: &Path) -> anyhow::Result<Self> {
        let postgres = PrivateCluster::start(&out_dir.join("postgres.log"))
            .await
            .context("start the private Postgres cluster")?;
        let broker = PrivateBroker::start()
            .await
            .context("start the private Kafka broker")?;
        let auth_dir = out_dir.join("auth");
        service_kit::auth::development::prepare(&auth_dir)
            .context("prepare the run's token issuer")?;
        Ok(Self {
            postgres,
            broker,
            auth_dir,
        })
    }

    /// Removes what a passed run left: its database and its topics. Without
    /// this a long invocation piles up a database and a few dozen partitions
    /// per run, and the later runs' broker restarts (which reload every
    /// partition) would be slower than the first ones', for no reason the
    /// system under test is responsible for. A failed run's are kept until
    /// the invocation ends.
    pub async fn forget_run(&self, database: &str, topic_prefix: &str) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.postgres.admin_url("postgres"))
            .await
            .context("connect to the private cluster as administrator")?;
        service_kit::db::drop_database(&mut admin, database).await?;
        admin.close().await.ok();
        let kafka = messaging::KafkaSettings::for_brokers(self.broker.address());
        messaging::topics::delete_topics_where(&kafka, |topic| topic.starts_with(topic_prefix))
            .await
            .with_context(|| format!("delete the topics named {topic_prefix}*"))?;
        Ok(())
    }
}

/// Where the service binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The binaries under test.
    pub current: PathBuf,
    /// The previous release's, for the previous-release fault.
    pub previous: Option<PathBuf>,
}

/// Which build a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The binaries under test.
    Current,
    /// The release before them (`--previous-bin-dir`).
    Previous,
}

/// One run's services.
#[derive(Debug)]
pub struct RunStack {
    pub addresses: StackAddresses,
    pub services: BTreeMap<Service, ServiceProcess>,
    /// The extra member per service a rebalance or previous-release fault
    /// starts, while it runs.
    pub extra_members: BTreeMap<Service, ServiceProcess>,
    /// Each service's link to Postgres, which `cut-database` cuts.
    pub database_links: BTreeMap<Service, CuttableProxy>,
    binaries: Binaries,
    log_dir: PathBuf,
}

impl RunStack {
    /// Provisions `database` (roles, schemas, grants, as `contrail-admin
    /// provision` does), then starts the services one after another, each
    /// once the previous one is ready.
    pub async fn start(
        infrastructure: &Infrastructure,
        database: &str,
        topic_prefix: &str,
        binaries: &Binaries,
        log_dir: &Path,
        http: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        let owners: Vec<SchemaOwner> = Service::ALL
            .iter()
            .map(|service| SchemaOwner {
                role: service.role(),
                schema: service.role(),
                password: None,
            })
            .collect();
        let admin_url = SecretString::from(infrastructure.postgres.admin_url("postgres"));
        service_kit::db::provision(&admin_url, database, &owners)
            .await
            .with_context(|| format!("provision the database {database}"))?;
        let mut ports = BTreeMap::new();
        for service in Service::ALL {
            ports.insert(service, free_port()?);
        }
        let postgres = SocketAddr::from(([127, 0, 0, 1], infrastructure.postgres.port()));
        let mut database_links = BTreeMap::new();
        let mut database_ports = BTreeMap::new();
        for service in Service::ALL {
            let link = CuttableProxy::start(postgres)
                .await
                .with_context(|| format!("start {service}'s link to Postgres"))?;
            database_ports.insert(service, link.address().port());
            database_links.insert(service, link);
        }
        let addresses = StackAddresses {
            postgres_port: infrastructure.postgres.port(),
            database_ports,
            database: database.to_owned(),
            brokers: infrastructure.broker.address(),
            topic_prefix: topic_prefix.to_owned(),
            ports,
            auth_dir: infrastructure.auth_dir.clone(),
        };
        let mut stack = Self {
            services: BTreeMap::new(),
            extra_members: BTreeMap::new(),
            database_links,
            binaries: binaries.clone(),
            log_dir: log_dir.to_path_buf(),
            addresses,
        };
        for service in Service::ALL {
            let port = stack
                .addresses
                .ports
                .get(&service)
                .copied()
                .unwrap_or_default();
            let mut process = ServiceProcess::new(
                service,
                1,
                port,
                &binaries.current,
                log_dir,
                &stack.addresses,
            );
            process.spawn()?;
            process.wait_ready(http).await?;
            stack.services.insert(service, process);
        }
        Ok(stack)
    }

    pub fn process_mut(&mut self, service: Service) -> anyhow::Result<&mut ServiceProcess> {
        self.services
            .get_mut(&service)
            .with_context(|| format!("{service} is not part of the stack"))
    }

    pub fn database_link_mut(&mut self, service: Service) -> anyhow::Result<&mut CuttableProxy> {
        self.database_links
            .get_mut(&service)
            .with_context(|| format!("{service} has no link to Postgres"))
    }

    pub fn process(&self, service: Service) -> anyhow::Result<&ServiceProcess> {
        self.services
            .get(&service)
            .with_context(|| format!("{service} is not part of the stack"))
    }

    /// Starts another process of `service`, of `release`: same database,
    /// same consumer groups, its own HTTP port. Returns once it is ready.
    pub async fn start_extra_member(
        &mut self,
        service: Service,
        release: Release,
        http: &reqwest::Client,
    ) -> anyhow::Result<()> {
        if self.extra_members.contains_key(&service) {
            bail!("an extra member of {service} is running already");
        }
        let member = match release {
            Release::Current => 2,
            Release::Previous => 3,
        };
        let bin_dir = self.bin_dir(release)?;
        let mut process = ServiceProcess::new(
            service,
            member,
            free_port()?,
            bin_dir,
            &self.log_dir,
            &self.addresses,
        );
        process.spawn()?;
        process.wait_ready(http).await?;
        self.extra_members.insert(service, process);
        Ok(())
    }

    /// Stops `service`'s process (SIGTERM) and starts it again on its port
    /// from `release`'s binary, as a rollback or a roll forward does.
    pub async fn restart_as(
        &mut self,
        service: Service,
        release: Release,
        http: &reqwest::Client,
    ) -> anyhow::Result<()> {
        let bin_dir = self.bin_dir(release)?.to_path_buf();
        let process = self.process_mut(service)?;
        process.stop().await?;
        process.switch_binary(&bin_dir);
        process.spawn()?;
        process.wait_ready(http).await?;
        Ok(())
    }

    fn bin_dir(&self, release: Release) -> anyhow::Result<&Path> {
        match release {
            Release::Current => Ok(&self.binaries.current),
            Release::Previous => self
                .binaries
                .previous
                .as_deref()
                .context("the previous-release fault needs --previous-bin-dir"),
        }
    }

    /// Stops (SIGTERM) the extra member of `service`, if one runs.
    pub async fn stop_extra_member(&mut self, service: Service) -> anyhow::Result<()> {
        if let Some(mut member) = self.extra_members.remove(&service) {
            member.stop().await?;
        }
        Ok(())
    }

    /// Fails if a service process has exited on its own: a fault must never
    /// take a service down for good (nothing here restarts it the way a
    /// supervisor would, so the harness stops and says so).
    pub fn ensure_alive(&mut self) -> anyhow::Result<()> {
        let processes = self
            .services
            .values_mut()
            .chain(self.extra_members.values_mut());
        for process in processes {
            if let Some(status) = process.exited()? {
                bail!(
                    "{} exited on its own ({status}); see {}",
                    process.label(),
                    process.log_path().display()
                );
            }
        }
        Ok(())
    }

    /// SIGTERM to every process, booking (the saga's driver) first.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        for member in self.extra_members.values_mut() {
            member.stop().await?;
        }
        self.extra_members.clear();
        for service in Service::ALL.iter().rev() {
            if let Some(process) = self.services.get_mut(service) {
                process.stop().await?;
            }
        }
        Ok(())
    }
}

/// Where the service binaries are: `--bin-dir`, else next to this one (the
/// same target directory and profile).
pub fn locate_binaries(bin_dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let bin_dir = match bin_dir {
        Some(dir) => dir,
        None => std::env::current_exe()
            .context("find the harness's own executable")?
            .parent()
            .context("the harness's executable has no directory")?
            .to_path_buf(),
    };
    for service in Service::ALL {
        if !bin_dir.join(service.name()).is_file() {
            bail!(
                "no {} binary in {}; build the services first (cargo build --bins -p flight-inventory -p booking -p payment -p notification) or pass --bin-dir",
                service.name(),
                bin_dir.display()
            );
        }
    }
    Ok(bin_dir)
}
