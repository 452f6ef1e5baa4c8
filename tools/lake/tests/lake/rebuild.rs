use std::collections::BTreeSet;
use std::time::Duration;

use contrail_lake::rebuild::rebuild;

use crate::harness::TestLake;

#[tokio::test]
async fn a_rebuild_replays_every_topic_into_a_fresh_lake_and_the_writer_resumes_after_it() {
    let lake = TestLake::new().await;
    let mut published = BTreeSet::new();
    for _ in 0..4 {
        published.extend(
            lake.publish_one_of_each()
                .await
                .into_iter()
                .map(|(_, id)| id.to_string()),
        );
    }
    let root = lake.store.root_dir().to_path_buf();
    // A lake that lost everything: the rebuild must not depend on it.
    std::fs::remove_dir_all(&root).unwrap();

    let rebuilt = rebuild(&lake.kafka, &root, &lake.settings).await.unwrap();

    assert_eq!(rebuilt.records, published.len());
    let reopened = lake.reopened();
    assert_eq!(reopened.all_ids().await, published);
    // The writer's group starts after the rebuilt data: nothing is read
    // twice (from its beginning, it would have read them within this wait).
    let writer = reopened.writer();
    assert!(writer
        .write_batch(Duration::from_secs(15))
        .await
        .unwrap()
        .is_none());
}
