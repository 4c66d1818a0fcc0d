//! The record routes: one record by id, and batches. Records are written from the mapped
//! snapshot into the body buffer ([`Record::write_json`]): no intermediate value, no serde
//! dispatch.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, Config, JSON, Shared, etag, not_modified, not_modified_response, resolve};
use crate::read::Record;

/// `?fields=a,b`.
#[derive(Deserialize)]
pub(super) struct FieldsQuery {
    fields: Option<String>,
}

/// The fields a `?fields=` names: `None` for all of them. Empty names are skipped, repeats
/// kept once.
pub(super) fn projection<'q>(
    config: &Config,
    query: &'q Result<Query<FieldsQuery>, QueryRejection>,
) -> Result<Option<Vec<&'q str>>, ApiError> {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("bad query string: {}", e.body_text()),
            ));
        }
    };
    let Some(list) = &q.fields else {
        return Ok(None);
    };
    let mut fields: Vec<&str> = Vec::new();
    for f in list.split(',').filter(|f| !f.is_empty()) {
        if fields.len() == config.max_fields {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "too_many_fields",
                format!("?fields= names at most {} fields", config.max_fields),
            ));
        }
        if !fields.contains(&f) {
            fields.push(f);
        }
    }
    Ok(Some(fields))
}

/// Appends a record, or only the named fields of it (in the order named; absent ones left
/// out), as JSON: written from the snapshot by [`Record::write_json`], byte for byte what
/// `serde_json` writes. On failure `out` is as it was.
pub(super) fn write_view(
    out: &mut Vec<u8>,
    rec: Record<'_>,
    fields: Option<&[&str]>,
) -> crate::Result<()> {
    let Some(fields) = fields else {
        return rec.write_json(out);
    };
    let start = out.len();
    out.push(b'{');
    for f in fields {
        if let Some(v) = rec.get(f) {
            if out.len() > start + 1 {
                out.push(b',');
            }
            crate::json::write_str(out, f.as_bytes(), true);
            out.push(b':');
            if let Err(e) = v.write_json(out) {
                out.truncate(start);
                return Err(e);
            }
        }
    }
    out.push(b'}');
    Ok(())
}

/// A JSON answer from `tree`: the body, its ETag, and `Content-Language` when the tree is
/// another locale's (a fallback).
pub(super) fn json_from_tree(
    body: Vec<u8>,
    tag: HeaderValue,
    fallback: Option<String>,
) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, JSON), (header::ETAG, tag)], body).into_response();
    if let Some(lang) = fallback.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::CONTENT_LANGUAGE, lang);
    }
    resp
}

pub(super) fn encode_failed(e: crate::Error) -> ApiError {
    // Only a snapshot that fails its own checks gets here (a corrupt file).
    tracing::error!("fms http: a record could not be encoded: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("the record could not be encoded: {e}"),
    )
}

pub(super) fn bad_path(e: PathRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_path",
        format!("bad path: {}", e.body_text()),
    )
}

/// A 414 for an id in a path over [`Config::max_id_bytes`].
pub(super) fn check_id(config: &Config, id: &str) -> Result<(), ApiError> {
    if id.len() > config.max_id_bytes {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "id_too_long",
            format!("ids are at most {} bytes", config.max_id_bytes),
        ));
    }
    Ok(())
}

/// The 404 of an id the tree (tagged `tag`) lacks.
pub(super) fn not_found(id: &str, locale: &str, tag: HeaderValue) -> Response {
    let mut resp = ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no record {id:?} in locale {locale:?}"),
    )
    .into_response();
    resp.headers_mut().insert(header::ETAG, tag);
    resp
}

/// `GET /v1/{locale}/records/{id}`.
pub(super) async fn get_record(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<FieldsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((locale, id)) = path.map_err(bad_path)?;
    check_id(&shared.config, &id)?;
    let fields = projection(&shared.config, &query)?;
    let (tree, fallback) = resolve(&shared, &locale)?;
    let tag = etag(tree.hash());
    let Some(rec) = tree.get(&id) else {
        return Ok(not_found(&id, &locale, tag));
    };
    if not_modified(&headers, &tag) {
        return Ok(not_modified_response(tag));
    }
    let mut body = Vec::with_capacity(512);
    write_view(&mut body, rec, fields.as_deref()).map_err(encode_failed)?;
    Ok(json_from_tree(body, tag, fallback))
}

/// One id of a batch body: borrowed from the body unless it has escapes.
#[derive(Deserialize)]
struct Id<'a>(#[serde(borrow)] Cow<'a, str>);

/// Appends `{id: record | null}` for each of `ids` (distinct), in request order: `record(i,
/// id)` is the record of the `i`th id.
pub(super) fn write_batch<'r>(
    out: &mut Vec<u8>,
    ids: &[&str],
    fields: Option<&[&str]>,
    mut record: impl FnMut(usize, &str) -> Option<Record<'r>>,
) -> crate::Result<()> {
    out.push(b'{');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        crate::json::write_str(out, id.as_bytes(), true);
        out.push(b':');
        match record(i, id) {
            Some(rec) => write_view(out, rec, fields)?,
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
    Ok(())
}

/// The body of a batch request, or the 413 / 400 for one that could not be read.
pub(super) fn batch_body(
    config: &Config,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("a batch body is at most {} bytes", config.max_body_bytes),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("the body could not be read: {}", e.body_text()),
            )
        }
    })
}

/// The distinct ids of a batch body (a JSON array of strings), in request order: borrowed
/// from the body unless escaped. A 400 for malformed JSON or an id over
/// [`Config::max_id_bytes`], a 413 for more than [`Config::max_batch`] ids.
pub(super) fn batch_ids<'b>(
    config: &Config,
    body: &'b [u8],
) -> Result<Vec<Cow<'b, str>>, ApiError> {
    let parsed: Vec<Id<'_>> = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the body must be a JSON array of id strings: {e}"),
        )
    })?;
    if parsed.len() > config.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "a batch has at most {} ids, not {}",
                config.max_batch,
                parsed.len()
            ),
        ));
    }
    let mut ids: Vec<Cow<'b, str>> = Vec::with_capacity(parsed.len());
    let mut seen = std::collections::HashSet::with_capacity(parsed.len());
    for (i, Id(id)) in parsed.into_iter().enumerate() {
        if id.len() > config.max_id_bytes {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "id_too_long",
                format!(
                    "id #{i} has {} bytes; ids are at most {}",
                    id.len(),
                    config.max_id_bytes
                ),
            ));
        }
        if !seen.contains(&*id) {
            seen.insert(id.clone());
            ids.push(id);
        }
    }
    Ok(ids)
}

/// `POST /v1/{locale}/records:batch`.
pub(super) async fn batch(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<FieldsQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(locale) = path.map_err(bad_path)?;
    let body = batch_body(&shared.config, body)?;
    let fields = projection(&shared.config, &query)?;
    let parsed = batch_ids(&shared.config, &body)?;
    let ids: Vec<&str> = parsed.iter().map(|id| &**id).collect();
    let (tree, fallback) = resolve(&shared, &locale)?;
    let tag = etag(tree.hash());
    let mut out = Vec::with_capacity(1024 * ids.len().min(64));
    write_batch(&mut out, &ids, fields.as_deref(), |_, id| tree.get(id)).map_err(encode_failed)?;
    Ok(json_from_tree(out, tag, fallback))
}
