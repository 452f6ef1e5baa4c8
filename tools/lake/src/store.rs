//! Where the lake's files live: an `object_store`, so the same code writes a
//! local directory (the default) or a bucket. A file is put whole, from a
//! finished buffer: a local put writes a staging file and renames it, an
//! object store's put is atomic, so a reader sees a whole file or none.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use chrono::NaiveDate;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::tables::Table;
use arrow::record_batch::RecordBatch;

/// The lake's root and the store it lives in.
#[derive(Debug, Clone)]
pub struct LakeStore {
    store: Arc<dyn ObjectStore>,
    /// For DataFusion: the root as a URL (`file:///…/`).
    root_url: String,
    root_dir: std::path::PathBuf,
}

impl LakeStore {
    /// A lake in a local directory, created if missing.
    pub fn local(root: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("create the lake directory {}", root.display()))?;
        let root = root
            .canonicalize()
            .with_context(|| format!("resolve {}", root.display()))?;
        for table in Table::ALL {
            // DataFusion lists a table's directory; an empty table is an empty directory.
            std::fs::create_dir_all(root.join(table.name()))
                .with_context(|| format!("create the {} directory", table.name()))?;
        }
        let store = LocalFileSystem::new_with_prefix(&root)
            .with_context(|| format!("open the lake at {}", root.display()))?;
        Ok(Self {
            store: Arc::new(store),
            root_url: format!("file://{}/", root.display()),
            root_dir: root,
        })
    }

    pub fn root_dir(&self) -> &std::path::Path {
        &self.root_dir
    }

    /// The URL of `table`'s directory, for a listing table.
    pub fn table_url(&self, table: Table) -> String {
        format!("{}{}/", self.root_url, table.name())
    }

    /// The file for records of one partition of `table`'s topic on `date`,
    /// in a batch that began at `first_offset`. Derived from the batch's
    /// start, so the batch written again after a crash (it starts at the
    /// same committed offset) replaces the file instead of adding one.
    pub fn file_path(table: Table, date: NaiveDate, partition: i32, first_offset: i64) -> Path {
        Path::from(format!(
            "{}/date={date}/part-{partition:04}-{first_offset:020}.parquet",
            table.name()
        ))
    }

    /// Encodes `batch` as Parquet and puts it at `path` in one piece.
    pub async fn put_parquet(&self, path: &Path, batch: &RecordBatch) -> anyhow::Result<()> {
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let mut buffer = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties))
            .context("start a parquet file")?;
        writer.write(batch).context("encode rows as parquet")?;
        writer.close().context("finish a parquet file")?;
        self.store
            .put(path, PutPayload::from(Bytes::from(buffer)))
            .await
            .with_context(|| format!("put {path}"))?;
        Ok(())
    }

    /// Every Parquet file of `table`.
    pub async fn files(&self, table: Table) -> anyhow::Result<Vec<Path>> {
        use futures::TryStreamExt as _;
        let prefix = Path::from(table.name());
        let listed: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .with_context(|| format!("list {}", table.name()))?;
        Ok(listed
            .into_iter()
            .map(|meta| meta.location)
            .filter(|path| path.extension() == Some("parquet"))
            .collect())
    }

    pub async fn delete(&self, path: &Path) -> anyhow::Result<()> {
        self.store
            .delete(path)
            .await
            .with_context(|| format!("delete {path}"))
    }
}
