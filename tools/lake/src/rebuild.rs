//! `rebuild`: the lake again, from the beginning of the topics.
//!
//! The lake is a copy; the domain event topics are its source of truth and
//! keep every event (`retention.ms = -1`). A rebuild reads every partition
//! from offset 0 into a fresh directory beside the lake, until it reaches
//! where each partition ended when it began; then it swaps the directories
//! (the old lake is kept beside, renamed, for the operator to delete) and
//! hands the positions it reached to the writer's consumer group, so the
//! writer resumes exactly after the rebuilt data. Stop the writer first: a
//! group's offsets cannot be set while a member holds its partitions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use messaging::stream::{commit_group_offsets, Position, RecordStream};
use messaging::KafkaSettings;

use crate::store::LakeStore;
use crate::writer::{topics, LakeWriter, WriterSettings};

/// How long a rebuild waits for records it knows exist before giving up.
const STALL_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Rebuilt {
    pub records: usize,
    /// The previous lake, moved aside; `None` if there was none.
    pub previous: Option<PathBuf>,
}

/// Rebuilds the lake at `root` from the topics, for the writer group in `settings`.
pub async fn rebuild(
    kafka: &KafkaSettings,
    root: &Path,
    settings: &WriterSettings,
) -> anyhow::Result<Rebuilt> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let sibling = |suffix: &str| -> anyhow::Result<PathBuf> {
        let name = root
            .file_name()
            .with_context(|| format!("{} names no directory", root.display()))?;
        Ok(root.with_file_name(format!("{}.{suffix}-{stamp}", name.to_string_lossy())))
    };
    let staging = sibling("rebuild")?;
    let store = LakeStore::local(&staging)?;
    let reader_group = format!("{}-rebuild-{stamp}", settings.group);
    let (stream, ends) =
        RecordStream::from_beginning(kafka, &reader_group, &topics(), Duration::from_secs(10))?;
    let writer = LakeWriter::over(stream, store, settings.clone());

    let mut reached: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut records = 0;
    let mut idle_since = tokio::time::Instant::now();
    while !caught_up(&reached, &ends) {
        match writer.write_batch(Duration::from_secs(1)).await? {
            Some(written) => {
                records += written.records;
                idle_since = tokio::time::Instant::now();
                for (topic, positions) in written.positions {
                    for position in positions {
                        let at = reached.entry((topic.clone(), position.partition)).or_default();
                        *at = (*at).max(position.next_offset);
                    }
                }
            }
            None if idle_since.elapsed() > STALL_LIMIT => anyhow::bail!(
                "the rebuild stopped short of the topics' end: reached {reached:?}, expected {ends:?}"
            ),
            None => {}
        }
    }

    let previous = if root.exists() {
        let aside = sibling("replaced")?;
        std::fs::rename(root, &aside).with_context(|| format!("move {} aside", root.display()))?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&staging, root)
        .with_context(|| format!("move the rebuilt lake to {}", root.display()))?;

    let mut positions: BTreeMap<String, Vec<Position>> = BTreeMap::new();
    for (topic, ends) in &ends {
        for end in ends {
            let next_offset = reached
                .get(&(topic.clone(), end.partition))
                .copied()
                .unwrap_or(end.next_offset)
                .max(end.next_offset);
            positions.entry(topic.clone()).or_default().push(Position {
                partition: end.partition,
                next_offset,
            });
        }
    }
    commit_group_offsets(kafka, &settings.group, &positions)
        .context("hand the rebuilt positions to the writer's group")?;
    Ok(Rebuilt { records, previous })
}

fn caught_up(
    reached: &BTreeMap<(String, i32), i64>,
    ends: &BTreeMap<String, Vec<Position>>,
) -> bool {
    ends.iter().all(|(topic, ends)| {
        ends.iter().all(|end| {
            end.next_offset == 0
                || reached
                    .get(&(topic.clone(), end.partition))
                    .is_some_and(|at| *at >= end.next_offset)
        })
    })
}
