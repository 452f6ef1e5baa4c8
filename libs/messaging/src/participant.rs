//! The participant kit: how a service applies the messages it consumes.
//!
//! A service writes one handler type and implements [`Handles<M>`] on it for
//! each message type `M` it applies, with `M`'s payload type. It registers
//! them on a [`Participant`], which is the [`MessageHandler`] a [`Consumer`]
//! runs:
//!
//! - the message types the consumer asks for are derived from the
//!   registrations, never listed by hand;
//! - the envelope is decoded once, here, into the registered payload type; a
//!   payload that breaks its type's contract is a permanent failure (parked);
//! - a handler gets a [`Delivery`]: the consumer's transaction, the message
//!   that caused the work, and [`Delivery::reply`] for the one way a saga
//!   participant answers (`booking.saga-replies`, keyed by saga id, caused by
//!   the command);
//! - [`Participant::after_commit`] runs work that must follow the commit of
//!   what the handlers wrote (waking a subscription, a dispatcher).
//!
//! [`Consumer`]: crate::Consumer

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use contracts::saga::StepRef;
use contracts::{topics, Envelope, Message};
use futures::future::BoxFuture;
use sqlx::PgConnection;

use crate::consumer::{HandlerError, Incoming, MessageHandler};

/// One message being applied: what a handler may touch.
#[derive(Debug)]
pub struct Delivery<'a> {
    /// The consumer's transaction: everything written through it commits
    /// together with the inbox row that marks the message applied.
    pub conn: &'a mut PgConnection,
    /// The message being applied; what the handler sends is caused by it.
    pub cause: &'a Envelope,
}

impl Delivery<'_> {
    /// Answers the saga step `step` through the outbox, in this transaction.
    pub async fn reply<R: Message>(
        &mut self,
        step: &StepRef,
        reply: R,
    ) -> Result<(), HandlerError> {
        self.send(topics::SAGA_REPLIES, &step.saga_id.to_string(), reply)
            .await
    }

    /// Writes `message`, caused by the one being applied, to `topic` through
    /// the outbox, in this transaction.
    pub async fn send<M: Message>(
        &mut self,
        topic: &str,
        key: &str,
        message: M,
    ) -> Result<(), HandlerError> {
        let envelope = Envelope::caused_by(message, self.cause);
        crate::outbox::enqueue(self.conn, topic, key, &envelope).await?;
        Ok(())
    }
}

/// Applies messages of type `M`.
pub trait Handles<M: Message>: Send + Sync + 'static {
    /// Applies `message` in `delivery`'s transaction. A refusal the sender
    /// must hear about is an answer (commit it with the reply), not an error.
    fn handle(
        &self,
        delivery: Delivery<'_>,
        message: M,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

type Route<H> = for<'a> fn(
    &'a H,
    &'a mut PgConnection,
    &'a Incoming,
) -> BoxFuture<'a, Result<(), HandlerError>>;

type Hook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A handler and the message types it applies, as one [`MessageHandler`].
pub struct Participant<H> {
    handler: H,
    routes: BTreeMap<&'static str, Route<H>>,
    message_types: Vec<&'static str>,
    after_commit: Option<Hook>,
}

impl<H: Send + Sync + 'static> Participant<H> {
    pub fn new(handler: H) -> Self {
        Self {
            handler,
            routes: BTreeMap::new(),
            message_types: Vec::new(),
            after_commit: None,
        }
    }

    /// Applies messages of type `M` with `H`'s [`Handles<M>`].
    #[must_use]
    pub fn on<M: Message>(mut self) -> Self
    where
        H: Handles<M>,
    {
        self.routes.insert(M::MESSAGE_TYPE, route::<H, M>);
        self.message_types = self.routes.keys().copied().collect();
        self
    }

    /// Runs `hook` after each commit that applied at least one message.
    #[must_use]
    pub fn after_commit<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.after_commit = Some(Arc::new(move || Box::pin(hook())));
        self
    }
}

fn route<'a, H: Handles<M>, M: Message>(
    handler: &'a H,
    conn: &'a mut PgConnection,
    incoming: &'a Incoming,
) -> BoxFuture<'a, Result<(), HandlerError>> {
    Box::pin(async move {
        let message = incoming.envelope.decode::<M>()?.payload;
        let delivery = Delivery {
            conn,
            cause: &incoming.envelope,
        };
        handler.handle(delivery, message).await
    })
}

impl<H: Send + Sync + 'static> MessageHandler for Participant<H> {
    fn message_types(&self) -> &[&'static str] {
        &self.message_types
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        message: &'a Incoming,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        match self.routes.get(message.envelope.message_type.as_str()) {
            Some(route) => route(&self.handler, conn, message),
            // The consumer only hands over the types this lists; anything
            // else is a bug in the runner, not in the message.
            None => {
                let message_type = message.envelope.message_type.clone();
                Box::pin(async move {
                    Err(HandlerError::Permanent(anyhow::anyhow!(
                        "no handler registered for {message_type}"
                    )))
                })
            }
        }
    }

    fn after_commit(&self) -> BoxFuture<'_, ()> {
        match &self.after_commit {
            Some(hook) => hook(),
            None => Box::pin(async {}),
        }
    }
}

impl<H> fmt::Debug for Participant<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Participant")
            .field("handler", &std::any::type_name::<H>())
            .field("message_types", &self.message_types)
            .field("after_commit", &self.after_commit.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Ping {
        n: u32,
    }
    impl Message for Ping {
        const MESSAGE_TYPE: &'static str = "test.Ping.v1";
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Pong {
        n: u32,
    }
    impl Message for Pong {
        const MESSAGE_TYPE: &'static str = "test.Pong.v1";
    }

    struct Table;
    impl Handles<Ping> for Table {
        async fn handle(&self, _: Delivery<'_>, _: Ping) -> Result<(), HandlerError> {
            Ok(())
        }
    }
    impl Handles<Pong> for Table {
        async fn handle(&self, _: Delivery<'_>, _: Pong) -> Result<(), HandlerError> {
            Ok(())
        }
    }

    #[test]
    fn the_types_a_participant_consumes_are_the_ones_registered() {
        let participant = Participant::new(Table)
            .on::<Pong>()
            .on::<Ping>()
            .on::<Ping>();
        assert_eq!(
            participant.message_types(),
            ["test.Ping.v1", "test.Pong.v1"]
        );
    }
}
