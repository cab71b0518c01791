//! Vector collections and documents (`vector_collection`, `vector_document`): vectors are
//! `real[]` read and written in PostgreSQL's binary protocol (sqlx binds `Vec<f32>` as
//! `float4[]`). Every statement is scoped to an organization through the collection.

use futures_util::TryStreamExt;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A collection.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CollectionRow {
    /// Id.
    pub vector_collection_id: Uuid,
    /// Dimension of every vector.
    pub dimension: i32,
    /// Bumped by every upsert.
    pub version: i64,
}

/// A collection by name, when the organization has it.
pub async fn collection(
    pool: &PgPool,
    org: Uuid,
    name: &str,
) -> Result<Option<CollectionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT vector_collection_id, dimension, version FROM vector_collection
          WHERE organization_id = $1 AND name = $2",
    )
    .bind(org)
    .bind(name)
    .fetch_optional(pool)
    .await
}

/// Create the collection unless it exists, then lock it for the transaction: the existing
/// row (its dimension wins) or the new one with `dimension`.
pub async fn lock_or_create(
    tx: &mut PgConnection,
    org: Uuid,
    name: &str,
    dimension: i32,
) -> Result<CollectionRow, sqlx::Error> {
    sqlx::query(
        "INSERT INTO vector_collection (organization_id, name, dimension) VALUES ($1, $2, $3)
         ON CONFLICT (organization_id, name) DO NOTHING",
    )
    .bind(org)
    .bind(name)
    .bind(dimension)
    .execute(&mut *tx)
    .await?;
    sqlx::query_as(
        "SELECT vector_collection_id, dimension, version FROM vector_collection
          WHERE organization_id = $1 AND name = $2 FOR UPDATE",
    )
    .bind(org)
    .bind(name)
    .fetch_one(&mut *tx)
    .await
}

/// Bump a (locked) collection's version; the new version.
pub async fn bump(tx: &mut PgConnection, collection: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE vector_collection SET version = version + 1, updated_at = now()
          WHERE vector_collection_id = $1 RETURNING version",
    )
    .bind(collection)
    .fetch_one(&mut *tx)
    .await
}

/// Documents to write, column-wise; `vectors` is every vector one after the other, each
/// `dimension` long.
#[derive(Debug, Clone, Copy)]
pub struct DocumentColumns<'a> {
    /// Ids.
    pub ids: &'a [String],
    /// Norms.
    pub norms: &'a [f32],
    /// Metadata, JSON object text.
    pub metadata: &'a [String],
    /// Texts.
    pub texts: &'a [Option<String>],
    /// Vectors, concatenated.
    pub vectors: &'a [f32],
    /// Length of each vector.
    pub dimension: i32,
}

/// Insert or replace documents (one statement; the vectors sliced out of one array).
pub async fn upsert(
    tx: &mut PgConnection,
    collection: Uuid,
    version: i64,
    d: DocumentColumns<'_>,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO vector_document
                (vector_collection_id, document_id, vector, norm, metadata, text, version)
         SELECT $1, d.id, ($6::real[])[(d.i - 1) * $7 + 1 : d.i * $7], d.norm, d.meta::jsonb, d.txt, $8
           FROM unnest($2::text[], $3::real[], $4::text[], $5::text[])
                WITH ORDINALITY AS d(id, norm, meta, txt, i)
         ON CONFLICT (vector_collection_id, document_id) DO UPDATE
            SET vector = EXCLUDED.vector, norm = EXCLUDED.norm, metadata = EXCLUDED.metadata,
                text = EXCLUDED.text, version = EXCLUDED.version, updated_at = now()",
    )
    .bind(collection)
    .bind(d.ids)
    .bind(d.norms)
    .bind(d.metadata)
    .bind(d.texts)
    .bind(d.vectors)
    .bind(d.dimension)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    Ok(r.rows_affected())
}

/// A document's vector and what filters read.
#[derive(Debug, sqlx::FromRow)]
pub struct VectorRow {
    /// Id.
    pub document_id: String,
    /// Vector.
    pub vector: Vec<f32>,
    /// Norm.
    pub norm: f32,
    /// Metadata, JSON object text.
    pub metadata: String,
}

/// Every document written after version `after` up to `upto`, passed to `each` as it streams
/// in (a collection is never held twice in memory while loading).
pub async fn changed_since(
    pool: &PgPool,
    collection: Uuid,
    after: i64,
    upto: i64,
    mut each: impl FnMut(VectorRow),
) -> Result<(), sqlx::Error> {
    let mut rows = sqlx::query_as::<_, VectorRow>(
        "SELECT document_id, vector, norm, metadata::text AS metadata FROM vector_document
          WHERE vector_collection_id = $1 AND version > $2 AND version <= $3",
    )
    .bind(collection)
    .bind(after)
    .bind(upto)
    .fetch(pool);
    while let Some(r) = rows.try_next().await? {
        each(r);
    }
    Ok(())
}

/// What a query answers for one document.
#[derive(Debug, sqlx::FromRow)]
pub struct DocumentRow {
    /// Id.
    pub document_id: String,
    /// Metadata, JSON object text.
    pub metadata: String,
    /// Text.
    pub text: Option<String>,
}

/// Metadata and text of the documents `ids` (any order; unknown ids are left out).
pub async fn documents(
    pool: &PgPool,
    collection: Uuid,
    ids: &[String],
) -> Result<Vec<DocumentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT document_id, metadata::text AS metadata, text FROM vector_document
          WHERE vector_collection_id = $1 AND document_id = ANY($2)",
    )
    .bind(collection)
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Whether the vector store answers (health).
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1 FROM vector_collection LIMIT 1")
        .execute(pool)
        .await
        .map(|_| ())
}
