//! This installation's random value (see `migrations/*/0013_installation.sql`): drawn once,
//! stored, read back after every restart.

use base64::Engine;
use rand::RngCore;

use super::{Conn, Result};

/// The installation's random value, drawn and stored by the first caller. Concurrent first
/// callers (several instances starting together) all read back the one that was stored.
pub async fn secret(conn: &mut Conn) -> Result<String> {
    if let Some((s,)) =
        sqlx::query_as::<_, (String,)>("SELECT secret FROM installation WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?
    {
        return Ok(s);
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let drawn = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    sqlx::query("INSERT INTO installation (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
        .bind(drawn)
        .execute(&mut *conn)
        .await?;
    let (s,): (String,) = sqlx::query_as("SELECT secret FROM installation WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    Ok(s)
}
