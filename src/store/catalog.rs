//! The model catalog in Postgres mirrors `models:` of the config file, so the dashboards show
//! what the gateway routes. Synced at start (and by `catraca migrate --config`).

use sqlx::PgPool;

use crate::config::Config;

/// Upsert every config model; models no longer in the config are marked inactive.
pub async fn sync(pool: &PgPool, config: &Config) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let names: Vec<&str> = config.models.iter().map(|m| m.name.as_str()).collect();
    for m in &config.models {
        sqlx::query(
            "INSERT INTO model (name, category, owned_by, input_usd_micros_per_1m, output_usd_micros_per_1m, active)
             VALUES ($1, $2, $3, $4, $5, true)
             ON CONFLICT (name) DO UPDATE SET category = EXCLUDED.category, owned_by = EXCLUDED.owned_by,
                 input_usd_micros_per_1m = EXCLUDED.input_usd_micros_per_1m,
                 output_usd_micros_per_1m = EXCLUDED.output_usd_micros_per_1m, active = true",
        )
        .bind(&m.name)
        .bind(m.category.as_str())
        .bind(&m.owned_by)
        .bind(m.input_micros_per_1m)
        .bind(m.output_micros_per_1m)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE model SET active = false WHERE NOT (name = ANY($1)) AND active")
        .bind(&names)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
