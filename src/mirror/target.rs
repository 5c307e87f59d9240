//! Where a mirror's objects go: an S3-compatible bucket or a local directory, both through the
//! `object_store` crate (its S3 client signs requests, retries and streams; its local store
//! writes each file whole, through a temporary file and a rename).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, ObjectStore, PutOptions, PutPayload,
    RetryConfig,
};

use crate::channels::SendError;
use crate::config::MirrorTarget;
use crate::status_page::cache::Asset;

/// One mirror's storage.
pub struct Target {
    store: Arc<dyn ObjectStore>,
    /// Prepended to every key (S3's `prefix`).
    prefix: String,
    /// A bucket keeps each object's content type and cache policy; a directory cannot (its
    /// web server types files by name) but gets precompressed `.gz` and `.br` siblings.
    directory: bool,
}

/// What one object write carries.
pub struct Object<'a> {
    pub body: &'a [u8],
    pub content_type: &'a str,
    pub cache_control: &'a str,
    /// Precompressed variants (directories only): gzip and brotli.
    pub gzip: Option<&'a [u8]>,
    pub br: Option<&'a [u8]>,
}

impl<'a> Object<'a> {
    pub fn of(asset: &'a Asset) -> Self {
        Self {
            body: &asset.identity,
            content_type: asset
                .content_type
                .to_str()
                .unwrap_or("application/octet-stream"),
            cache_control: asset.cache_control.to_str().unwrap_or("no-cache"),
            gzip: asset.gzip().map(|b| &b[..]),
            br: asset.br().map(|b| &b[..]),
        }
    }
}

impl Target {
    pub fn open(config: &MirrorTarget, timeout: Duration) -> anyhow::Result<Self> {
        match config {
            MirrorTarget::S3 {
                bucket,
                region,
                endpoint,
                prefix,
                access_key_id,
                secret_access_key,
                session_token,
                path_style,
                ..
            } => {
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(access_key_id.expose())
                    .with_secret_access_key(secret_access_key.expose())
                    .with_virtual_hosted_style_request(*path_style == Some(false))
                    .with_client_options(
                        ClientOptions::new()
                            .with_timeout(timeout)
                            .with_connect_timeout(Duration::from_secs(10)),
                    )
                    // A few quick retries inside one attempt; the outbox retries the rest
                    // with its own backoff.
                    .with_retry(RetryConfig {
                        max_retries: 2,
                        retry_timeout: timeout,
                        ..Default::default()
                    });
                if let Some(token) = session_token {
                    b = b.with_token(token.expose());
                }
                if let Some(e) = endpoint {
                    b = b
                        .with_endpoint(e.as_str().trim_end_matches('/'))
                        .with_allow_http(e.scheme() == "http");
                }
                let store = b.build().map_err(|e| {
                    anyhow::anyhow!(
                        "mirror `{}`: cannot set up the S3 client: {e}",
                        config.name()
                    )
                })?;
                let prefix = match prefix.trim_matches('/') {
                    "" => String::new(),
                    p => format!("{p}/"),
                };
                Ok(Self {
                    store: Arc::new(store),
                    prefix,
                    directory: false,
                })
            }
            MirrorTarget::Directory { path, .. } => {
                std::fs::create_dir_all(path).map_err(|e| {
                    anyhow::anyhow!(
                        "mirror `{}`: cannot create the directory {}: {e}",
                        config.name(),
                        path.display()
                    )
                })?;
                let store = LocalFileSystem::new_with_prefix(path).map_err(|e| {
                    anyhow::anyhow!(
                        "mirror `{}`: cannot use the directory {}: {e}",
                        config.name(),
                        path.display()
                    )
                })?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: String::new(),
                    directory: true,
                })
            }
        }
    }

    fn path(&self, key: &str) -> Result<Path, SendError> {
        Path::parse(format!("{}{key}", self.prefix))
            .map_err(|e| SendError::permanent(format!("`{key}` is not a valid object key: {e}")))
    }

    /// Writes one object (and, in a directory, its precompressed siblings, or removes stale
    /// ones).
    pub async fn put(&self, key: &str, o: &Object<'_>) -> Result<(), SendError> {
        if self.directory {
            for (suffix, variant) in [(".gz", o.gzip), (".br", o.br)] {
                let sibling = format!("{key}{suffix}");
                match variant {
                    Some(bytes) => self.write(&sibling, bytes, None).await?,
                    None => self.delete(&sibling).await?,
                }
            }
            // The document itself last: a server never pairs it with an older sibling.
            return self.write(key, o.body, None).await;
        }
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            AttributeValue::from(o.content_type.to_string()),
        );
        attributes.insert(
            Attribute::CacheControl,
            AttributeValue::from(o.cache_control.to_string()),
        );
        self.write(key, o.body, Some(attributes)).await
    }

    async fn write(
        &self,
        key: &str,
        body: &[u8],
        attributes: Option<Attributes>,
    ) -> Result<(), SendError> {
        let opts = PutOptions {
            attributes: attributes.unwrap_or_default(),
            ..Default::default()
        };
        self.store
            .put_opts(&self.path(key)?, PutPayload::from(body.to_vec()), opts)
            .await
            .map(|_| ())
            .map_err(|e| classify(&format!("writing `{key}`"), e))
    }

    /// Removes one object (and its siblings in a directory); one already gone is fine.
    pub async fn delete(&self, key: &str) -> Result<(), SendError> {
        let mut keys = vec![key.to_string()];
        if self.directory && !key.ends_with(".gz") && !key.ends_with(".br") {
            keys.push(format!("{key}.gz"));
            keys.push(format!("{key}.br"));
        }
        for k in keys {
            match self.store.delete(&self.path(&k)?).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(classify(&format!("deleting `{k}`"), e)),
            }
        }
        Ok(())
    }

    /// Every object's key (without the prefix) and size, siblings left out.
    pub async fn list(&self) -> Result<HashMap<String, u64>, SendError> {
        let prefix = match self.prefix.trim_end_matches('/') {
            "" => None,
            p => Some(Path::parse(p).map_err(|e| SendError::permanent(e.to_string()))?),
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(|e| classify("listing the mirror", e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.as_ref().strip_prefix(&self.prefix)?.to_string();
                let sibling = self.directory && (key.ends_with(".gz") || key.ends_with(".br"));
                (!sibling).then_some((key, m.size))
            })
            .collect())
    }
}

/// Storage errors are worth retrying (the service may be down or slow), except refused
/// credentials and permissions, which need a person.
fn classify(what: &str, e: object_store::Error) -> SendError {
    match e {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            SendError::permanent(format!("{what}: refused: {e}"))
        }
        e => SendError::retryable(format!("{what}: {e}")),
    }
}
