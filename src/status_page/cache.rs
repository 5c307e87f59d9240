//! The page cache. Every public document (the page, incident pages, feeds, v2 JSON) is rendered
//! once per change, compressed once (gzip and brotli), and served from memory: a request costs a
//! map lookup and a reference-counted copy, however much history there is and however many
//! customers are refreshing. Rebuilt when this instance commits a change, when the database's
//! public revision moves (another instance committed), and once a minute (the day bars move).

use std::collections::HashMap;
use std::io::Write;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use lru::LruCache;
use sha2::{Digest, Sha256};

use super::snapshot::Snapshot;

/// One document in every encoding, with its validators.
#[derive(Debug)]
pub struct Asset {
    pub content_type: HeaderValue,
    pub identity: Bytes,
    /// The compressed encodings, made when the document is built ([`Asset::new`]) or on first
    /// use ([`Asset::lazy`]); `None` inside for bodies too short to be worth compressing.
    gzip: OnceLock<Option<Bytes>>,
    br: OnceLock<Option<Bytes>>,
    /// Weak, since the encodings are equivalent representations of one content.
    pub etag: HeaderValue,
    pub cache_control: HeaderValue,
}

/// Bodies shorter than this are not worth compressing.
const COMPRESS_MIN: usize = 512;

impl Asset {
    /// A document compressed now, for those that many clients ask for at once after every
    /// change (the front page, feeds, JSON): the rebuild pays, off the async threads.
    pub fn new(
        content_type: &'static str,
        body: impl Into<Bytes>,
        cache_control: &HeaderValue,
    ) -> Self {
        let asset = Self::lazy(content_type, body, cache_control);
        asset.gzip();
        asset.br();
        asset
    }

    /// A document compressed on first use, for the many that few clients read (the pages of
    /// thousands of past incidents): they hold their identity bytes only until asked for.
    pub fn lazy(
        content_type: &'static str,
        body: impl Into<Bytes>,
        cache_control: &HeaderValue,
    ) -> Self {
        let identity: Bytes = body.into();
        let digest = Sha256::digest(&identity);
        let etag = HeaderValue::from_str(&format!("W/\"{}\"", hex::encode(&digest[..12])))
            .expect("hex is a valid header");
        Self {
            content_type: HeaderValue::from_static(content_type),
            identity,
            gzip: OnceLock::new(),
            br: OnceLock::new(),
            etag,
            cache_control: cache_control.clone(),
        }
    }

    /// The gzip encoding (`None` for short bodies).
    pub fn gzip(&self) -> Option<&Bytes> {
        self.gzip
            .get_or_init(|| (self.identity.len() >= COMPRESS_MIN).then(|| gzip(&self.identity)))
            .as_ref()
    }

    /// The brotli encoding (`None` for short bodies).
    pub fn br(&self) -> Option<&Bytes> {
        self.br
            .get_or_init(|| (self.identity.len() >= COMPRESS_MIN).then(|| brotli(&self.identity)))
            .as_ref()
    }

    /// Answers a GET or HEAD: 304 when the client's copy is current, else the best encoding the
    /// client accepts.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let mut headers = HeaderMap::with_capacity(6);
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, self.cache_control.clone());
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if not_modified(request, &self.etag) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        headers.insert(header::CONTENT_TYPE, self.content_type.clone());
        let accepted = request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Short bodies have no encodings (`br()` and `gzip()` say `None`): identity.
        let encoded = if accepts(accepted, "br") {
            self.br().map(|b| ("br", b))
        } else if accepts(accepted, "gzip") {
            self.gzip().map(|b| ("gzip", b))
        } else {
            None
        };
        let body = match encoded {
            Some((coding, bytes)) => {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
                bytes.clone()
            }
            None => self.identity.clone(),
        };
        (StatusCode::OK, headers, body).into_response()
    }
}

fn gzip(data: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 3),
        flate2::Compression::best(),
    );
    enc.write_all(data).expect("writing to memory");
    Bytes::from(enc.finish().expect("writing to memory"))
}

fn brotli(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() / 3);
    {
        // Quality 5 of 11, with a window that fits the document (2^18 to 2^22 bytes): on a
        // 41 KB page it gives 4,257 bytes in 0.6 ms where quality 7 gives 4,237 in 1.1 ms (and
        // quality 9 took 12 ms). From quality 7 up the encoder allocates an 8 MiB hash table
        // per document, which jemalloc hands back to the system and takes again each time
        // (page faults: a change took 35 ms longer to reach the page); quality 5 needs 1 MiB.
        let lgwin = (usize::BITS - data.len().max(1).leading_zeros()).clamp(18, 22);
        let mut w = ::brotli::CompressorWriter::new(&mut out, 4096, 5, lgwin);
        w.write_all(data).expect("writing to memory");
    }
    Bytes::from(out)
}

/// Does `If-None-Match` name this ETag (weak comparison, as RFC 9110 asks for GET)?
fn not_modified(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(inm) = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let ours = etag.to_str().unwrap_or("").trim_start_matches("W/");
    inm.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == ours)
}

/// Does an `Accept-Encoding` value accept `coding` (explicitly or by `*`, with q > 0)?
fn accepts(accept_encoding: &str, coding: &str) -> bool {
    let mut star = None;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            return q > 0.0;
        }
        if name == "*" {
            star = Some(q > 0.0);
        }
    }
    star.unwrap_or(false)
}

/// Everything rendered from one snapshot.
pub struct Pages {
    pub snapshot: Arc<Snapshot>,
    pub assets: HashMap<String, Arc<Asset>>,
    pub built_at: DateTime<Utc>,
}

/// Documents rendered on demand (older incidents, history months) kept per revision; past this
/// the least recently used go first.
const ON_DEMAND_MAX: usize = 256;

/// Documents rendered on demand at once, at most (each on a blocking thread): a crowd asking
/// for old months waits its turn instead of taking every core from the status page.
pub const RENDER_SLOTS: usize = 2;

/// What is kept for one revision of the public data.
struct OnDemand {
    revision: i64,
    assets: LruCache<String, Arc<Asset>>,
    /// When the first incident started (`Some(None)`: there is none), once looked up.
    first_incident: Option<Option<DateTime<Utc>>>,
}

impl OnDemand {
    fn new(revision: i64) -> Self {
        Self {
            revision,
            assets: LruCache::new(NonZeroUsize::new(ON_DEMAND_MAX).expect("non-zero")),
            first_incident: None,
        }
    }
}

/// The current pages of this instance, swapped atomically on every rebuild.
pub struct PageCache {
    current: ArcSwap<Pages>,
    on_demand: Mutex<OnDemand>,
    /// Taken while rendering a document on demand.
    pub render_slots: tokio::sync::Semaphore,
}

impl PageCache {
    pub fn new(pages: Pages) -> Self {
        Self {
            current: ArcSwap::from_pointee(pages),
            on_demand: Mutex::new(OnDemand::new(0)),
            render_slots: tokio::sync::Semaphore::new(RENDER_SLOTS),
        }
    }

    pub fn current(&self) -> Arc<Pages> {
        self.current.load_full()
    }

    pub fn get(&self, path: &str) -> Option<Arc<Asset>> {
        self.current.load().assets.get(path).cloned()
    }

    pub fn replace(&self, pages: Pages) {
        self.current.store(Arc::new(pages));
    }

    fn for_revision(&self, revision: i64) -> std::sync::MutexGuard<'_, OnDemand> {
        let mut guard = self.on_demand.lock().expect("cache lock");
        if guard.revision != revision {
            *guard = OnDemand::new(revision);
        }
        guard
    }

    /// A document rendered on demand for the current revision, if already rendered.
    pub fn on_demand(&self, revision: i64, key: &str) -> Option<Arc<Asset>> {
        self.for_revision(revision).assets.get(key).cloned()
    }

    /// Keeps a document rendered on demand (bounded: the least recently used goes first).
    pub fn keep(&self, revision: i64, key: String, asset: Arc<Asset>) {
        self.for_revision(revision).assets.put(key, asset);
    }

    /// When the first incident started, if looked up for this revision.
    pub fn first_incident(&self, revision: i64) -> Option<Option<DateTime<Utc>>> {
        self.for_revision(revision).first_incident
    }

    pub fn keep_first_incident(&self, revision: i64, first: Option<DateTime<Utc>>) {
        self.for_revision(revision).first_incident = Some(first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_is_read_with_q_values() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(accepts("gzip;q=0.5, br;q=1.0", "gzip"));
        assert!(!accepts("gzip;q=0, br", "gzip"));
        assert!(accepts("*", "br"));
        assert!(!accepts("*;q=0", "br"));
        assert!(!accepts("", "gzip"));
        assert!(!accepts("identity", "gzip"));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let etag = HeaderValue::from_static("W/\"abc\"");
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"abc\""));
        assert!(not_modified(&h, &etag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("W/\"zzz\", W/\"abc\""),
        );
        assert!(not_modified(&h, &etag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("W/\"zzz\""));
        assert!(!not_modified(&h, &etag));
    }

    fn pages() -> Pages {
        Pages {
            snapshot: Arc::new(Snapshot {
                revision: 0,
                now: chrono::DateTime::UNIX_EPOCH,
                updated_at: None,
                indicator: crate::domain::status::Indicator::None,
                components: Vec::new(),
                active: Vec::new(),
                recent: Vec::new(),
                maintenances: Vec::new(),
                feed: Vec::new(),
                record: Default::default(),
                stale_since: None,
            }),
            assets: HashMap::new(),
            built_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn on_demand_documents_leave_least_recently_used_first() {
        let cache = PageCache::new(pages());
        let cc = HeaderValue::from_static("public");
        let doc = |n: usize| Arc::new(Asset::new("text/plain", format!("doc {n}"), &cc));
        for n in 0..ON_DEMAND_MAX {
            cache.keep(7, format!("k{n}"), doc(n));
        }
        // k0 is read, so k1 is now the least recently used.
        assert!(cache.on_demand(7, "k0").is_some());
        cache.keep(7, "new".into(), doc(999));
        assert!(cache.on_demand(7, "k0").is_some(), "recently read: kept");
        assert!(
            cache.on_demand(7, "k1").is_none(),
            "least recently used: gone"
        );
        assert!(
            cache.on_demand(7, "k2").is_some(),
            "the rest stay (no wholesale drop)"
        );
        assert!(cache.on_demand(7, "new").is_some());
        // A new revision starts afresh.
        assert!(cache.on_demand(8, "k0").is_none());
    }

    #[test]
    fn encodings_round_trip() {
        let cc = HeaderValue::from_static("public, max-age=10");
        let body = "status ".repeat(500);
        let a = Asset::new("text/plain", body.clone(), &cc);
        let mut out = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&a.gzip().unwrap()[..]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, body);
        let mut out = Vec::new();
        ::brotli::BrotliDecompress(&mut &a.br().unwrap()[..], &mut out).unwrap();
        assert_eq!(out, body.as_bytes());
        assert!(a.br().unwrap().len() < body.len() / 10);
    }

    #[test]
    fn a_lazy_document_is_compressed_when_first_asked_for() {
        let cc = HeaderValue::from_static("public, max-age=10");
        let body = "incident ".repeat(300);
        let lazy = Asset::lazy("text/html", body.clone(), &cc);
        assert!(lazy.br.get().is_none() && lazy.gzip.get().is_none());
        let mut asked = HeaderMap::new();
        asked.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, br"),
        );
        let resp = lazy.respond(&asked);
        assert_eq!(resp.headers()[header::CONTENT_ENCODING], "br");
        assert!(lazy.br.get().is_some(), "kept for the next request");
        assert!(
            lazy.gzip.get().is_none(),
            "gzip is made only when asked for"
        );
        // The same bytes and validators as a document compressed at once.
        let eager = Asset::new("text/html", body, &cc);
        assert_eq!(lazy.br(), eager.br());
        assert_eq!(lazy.gzip(), eager.gzip());
        assert_eq!(lazy.etag, eager.etag);
    }
}
