//! What a service wrote to its outbox: for tests that check a state change
//! and the event it publishes committed together, exactly once.

use anyhow::Context;
use contracts::{Envelope, Message};
use service_kit::runtime::Service;

use crate::TestApp;

impl<S: Service> TestApp<S> {
    /// Every envelope of type `M` the service wrote to its outbox for
    /// `topic` under `key`, oldest first (the outbox keeps published rows
    /// for a while, so this sees them whether or not the relay has run).
    pub async fn outbox_events<M: Message>(&self, topic: &str, key: &str) -> Vec<Envelope<M>> {
        let pool = self.pool().await;
        let rows: Vec<Vec<u8>> = match sqlx::query_scalar(
            "SELECT payload FROM outbox
             WHERE topic = $1 AND partition_key = $2 AND message_type = $3
             ORDER BY id",
        )
        .bind(topic)
        .bind(key)
        .bind(M::MESSAGE_TYPE)
        .fetch_all(&pool)
        .await
        .with_context(|| format!("read {} rows of {topic} from the outbox", M::MESSAGE_TYPE))
        {
            Ok(rows) => rows,
            Err(error) => panic!("{error:#}"),
        };
        rows.iter()
            .map(|payload| {
                let envelope: Envelope = match serde_json::from_slice(payload) {
                    Ok(envelope) => envelope,
                    Err(error) => panic!("an outbox row of {topic} is not an envelope: {error}"),
                };
                match envelope.decode::<M>() {
                    Ok(decoded) => decoded,
                    Err(error) => panic!("an outbox row of {topic}: {error}"),
                }
            })
            .collect()
    }
}
