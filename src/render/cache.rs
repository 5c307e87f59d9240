//! The page cache. Every public document (the page, incident pages, feeds, v2 JSON) is rendered
//! once per change, compressed once (gzip and brotli), and served from memory: a request costs a
//! map lookup and a reference-counted copy, however much history there is and however many
//! customers are refreshing. Rebuilt when this instance commits a change, when the database's
//! public revision moves (another instance committed), and once a minute (the day bars move).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::snapshot::Snapshot;

/// One document in every encoding, with its validators.
#[derive(Debug)]
pub struct Asset {
    pub content_type: HeaderValue,
    pub identity: Bytes,
    pub gzip: Option<Bytes>,
    pub br: Option<Bytes>,
    /// Weak, since the encodings are equivalent representations of one content.
    pub etag: HeaderValue,
    pub cache_control: HeaderValue,
}

/// Bodies shorter than this are not worth compressing.
const COMPRESS_MIN: usize = 512;

impl Asset {
    pub fn new(
        content_type: &'static str,
        body: impl Into<Bytes>,
        cache_control: &HeaderValue,
    ) -> Self {
        let identity: Bytes = body.into();
        let digest = Sha256::digest(&identity);
        let etag = HeaderValue::from_str(&format!("W/\"{}\"", hex::encode(&digest[..12])))
            .expect("hex is a valid header");
        let (gzip, br) = if identity.len() >= COMPRESS_MIN {
            (Some(gzip(&identity)), Some(brotli(&identity)))
        } else {
            (None, None)
        };
        Self {
            content_type: HeaderValue::from_static(content_type),
            identity,
            gzip,
            br,
            etag,
            cache_control: cache_control.clone(),
        }
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
        let body = match (&self.br, &self.gzip) {
            (Some(br), _) if accepts(accepted, "br") => {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
                br.clone()
            }
            (_, Some(gz)) if accepts(accepted, "gzip") => {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                gz.clone()
            }
            _ => self.identity.clone(),
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
        // Quality 9 of 11: close to the best ratio at a fraction of its time.
        let mut w = ::brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
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

/// Documents rendered on demand (older incidents, history months), kept until the next change.
const ON_DEMAND_MAX: usize = 256;

/// The current pages of this instance, swapped atomically on every rebuild.
pub struct PageCache {
    current: ArcSwap<Pages>,
    on_demand: Mutex<(i64, HashMap<String, Arc<Asset>>)>,
}

impl PageCache {
    pub fn new(pages: Pages) -> Self {
        Self {
            current: ArcSwap::from_pointee(pages),
            on_demand: Mutex::new((0, HashMap::new())),
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

    /// A document rendered on demand for the current revision, if already rendered.
    pub fn on_demand(&self, revision: i64, key: &str) -> Option<Arc<Asset>> {
        let mut guard = self.on_demand.lock().expect("cache lock");
        if guard.0 != revision {
            *guard = (revision, HashMap::new());
        }
        guard.1.get(key).cloned()
    }

    /// Keeps a document rendered on demand (bounded: the oldest arbitrary entries go first).
    pub fn keep(&self, revision: i64, key: String, asset: Arc<Asset>) {
        let mut guard = self.on_demand.lock().expect("cache lock");
        if guard.0 != revision {
            *guard = (revision, HashMap::new());
        }
        if guard.1.len() >= ON_DEMAND_MAX {
            guard.1.clear();
        }
        guard.1.insert(key, asset);
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

    #[test]
    fn encodings_round_trip() {
        let cc = HeaderValue::from_static("public, max-age=10");
        let body = "status ".repeat(500);
        let a = Asset::new("text/plain", body.clone(), &cc);
        let mut out = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&a.gzip.as_ref().unwrap()[..]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, body);
        let mut out = Vec::new();
        ::brotli::BrotliDecompress(&mut &a.br.as_ref().unwrap()[..], &mut out).unwrap();
        assert_eq!(out, body.as_bytes());
        assert!(a.br.as_ref().unwrap().len() < body.len() / 10);
    }
}
