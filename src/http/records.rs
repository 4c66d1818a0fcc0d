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

use super::{ApiError, JSON, Shared, etag, not_modified, not_modified_response, resolve};
use crate::read::{Record, Snapshot};

/// `?fields=a,b`.
#[derive(Deserialize)]
pub(super) struct FieldsQuery {
    fields: Option<String>,
}

/// The fields a `?fields=` names: `None` for all of them. Empty names are skipped, repeats
/// kept once.
fn projection<'q>(
    shared: &Shared,
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
        if fields.len() == shared.config.max_fields {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "too_many_fields",
                format!("?fields= names at most {} fields", shared.config.max_fields),
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
fn write_view(out: &mut Vec<u8>, rec: Record<'_>, fields: Option<&[&str]>) -> crate::Result<()> {
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
fn json_from_tree(body: Vec<u8>, tag: HeaderValue, fallback: Option<String>) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, JSON), (header::ETAG, tag)], body).into_response();
    if let Some(lang) = fallback.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::CONTENT_LANGUAGE, lang);
    }
    resp
}

fn encode_failed(e: crate::Error) -> ApiError {
    // Only a snapshot that fails its own checks gets here (a corrupt file).
    tracing::error!("fms http: a record could not be encoded: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("the record could not be encoded: {e}"),
    )
}

fn bad_path(e: PathRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_path",
        format!("bad path: {}", e.body_text()),
    )
}

/// `GET /v1/{locale}/records/{id}`.
pub(super) async fn get_record(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<FieldsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((locale, id)) = path.map_err(bad_path)?;
    if id.len() > shared.config.max_id_bytes {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "id_too_long",
            format!("ids are at most {} bytes", shared.config.max_id_bytes),
        ));
    }
    let fields = projection(&shared, &query)?;
    let (tree, fallback) = resolve(&shared, &locale)?;
    let tag = etag(tree.hash());
    let Some(rec) = tree.get(&id) else {
        let mut resp = ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no record {id:?} in locale {locale:?}"),
        )
        .into_response();
        resp.headers_mut().insert(header::ETAG, tag);
        return Ok(resp);
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

/// Appends `{id: record | null}` for each of `ids` (distinct), in request order.
fn write_batch(
    out: &mut Vec<u8>,
    tree: &Snapshot,
    ids: &[&str],
    fields: Option<&[&str]>,
) -> crate::Result<()> {
    out.push(b'{');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        crate::json::write_str(out, id.as_bytes(), true);
        out.push(b':');
        match tree.get(id) {
            Some(rec) => write_view(out, rec, fields)?,
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
    Ok(())
}

/// `POST /v1/{locale}/records:batch`.
pub(super) async fn batch(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<FieldsQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(locale) = path.map_err(bad_path)?;
    let config = &shared.config;
    let body = body.map_err(|e| {
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
    })?;
    let fields = projection(&shared, &query)?;
    let parsed: Vec<Id<'_>> = serde_json::from_slice(&body).map_err(|e| {
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
    let mut ids: Vec<&str> = Vec::with_capacity(parsed.len());
    let mut seen = std::collections::HashSet::with_capacity(parsed.len());
    for (i, Id(id)) in parsed.iter().enumerate() {
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
        if seen.insert(&**id) {
            ids.push(id);
        }
    }
    let (tree, fallback) = resolve(&shared, &locale)?;
    let tag = etag(tree.hash());
    let mut out = Vec::with_capacity(1024 * ids.len().min(64));
    write_batch(&mut out, &tree, &ids, fields.as_deref()).map_err(encode_failed)?;
    Ok(json_from_tree(out, tag, fallback))
}
