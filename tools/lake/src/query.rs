//! SQL over the lake with DataFusion. Each table is a view over a listing
//! table of its directory's Parquet files (`<table>_files`, with the `date`
//! directory as a partition column), deduplicated by `message_id`: an event
//! that sits in two files after an unlucky crash (see [`crate::writer`])
//! counts once. The lake is read-only here; nothing is ever written back.

use std::sync::Arc;

use anyhow::Context;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;

use crate::store::LakeStore;
use crate::tables::Table;

/// A session with every lake table registered.
pub async fn session(store: &LakeStore) -> anyhow::Result<SessionContext> {
    let context = SessionContext::new();
    for table in Table::ALL {
        let url = ListingTableUrl::parse(store.table_url(table))
            .with_context(|| format!("the location of {}", table.name()))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![("date".to_owned(), DataType::Utf8)]);
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(table.schema());
        let files = ListingTable::try_new(config)
            .with_context(|| format!("list the files of {}", table.name()))?;
        let files_name = format!("{}_files", table.name());
        context
            .register_table(files_name.as_str(), Arc::new(files))
            .with_context(|| format!("register {files_name}"))?;
        let view = format!(
            "CREATE VIEW {name} AS \
             SELECT DISTINCT ON (message_id) * FROM {files_name} ORDER BY message_id, kafka_offset",
            name = table.name()
        );
        context
            .sql(&view)
            .await
            .with_context(|| format!("create the view {}", table.name()))?
            .collect()
            .await
            .with_context(|| format!("create the view {}", table.name()))?;
    }
    Ok(context)
}

/// The result of `sql` over the lake.
pub async fn query(store: &LakeStore, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let context = session(store).await?;
    run(&context, sql).await
}

/// The result of `sql` in `context`.
pub async fn run(context: &SessionContext, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let frame = context.sql(sql).await.context("plan the query")?;
    frame.collect().await.context("run the query")
}

/// `batches` as a text table.
pub fn render(batches: &[RecordBatch]) -> anyhow::Result<String> {
    if batches.iter().all(|batch| batch.num_rows() == 0) {
        return Ok("(no rows)".to_owned());
    }
    Ok(arrow::util::pretty::pretty_format_batches(batches)
        .context("format the result")?
        .to_string())
}
