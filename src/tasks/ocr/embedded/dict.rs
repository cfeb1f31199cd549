//! Dictionary access: typed getters for PDF dictionary values, which may be
//! indirect references.

use pdf_extract::{Dictionary, Document, Object};

pub(super) fn deref<'a>(doc: &'a Document, object: &'a Object) -> Option<&'a Object> {
    doc.dereference(object).ok().map(|(_, o)| o)
}

pub(super) fn get<'a>(doc: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    dict.get(key).ok().and_then(|o| deref(doc, o))
}

pub(super) fn get_dict<'a>(
    doc: &'a Document,
    dict: &'a Dictionary,
    key: &[u8],
) -> Option<&'a Dictionary> {
    match get(doc, dict, key)? {
        Object::Dictionary(d) => Some(d),
        _ => None,
    }
}

pub(super) fn get_name<'a>(
    doc: &'a Document,
    dict: &'a Dictionary,
    key: &[u8],
) -> Option<&'a [u8]> {
    match get(doc, dict, key)? {
        Object::Name(n) => Some(n),
        _ => None,
    }
}

pub(super) fn get_bool(doc: &Document, dict: &Dictionary, key: &[u8]) -> Option<bool> {
    match get(doc, dict, key)? {
        Object::Boolean(b) => Some(*b),
        _ => None,
    }
}

/// An integer, also when written as a whole real (`2550.0`).
pub(super) fn as_int(object: &Object) -> Option<i64> {
    match object {
        Object::Integer(i) => Some(*i),
        Object::Real(r) if r.fract() == 0.0 && r.abs() < 1e15 => Some(*r as i64),
        _ => None,
    }
}

pub(super) fn get_int(doc: &Document, dict: &Dictionary, key: &[u8]) -> Option<i64> {
    as_int(get(doc, dict, key)?)
}

pub(super) fn as_number(object: &Object) -> Option<f32> {
    match object {
        Object::Integer(i) => Some(*i as f32),
        Object::Real(r) if r.is_finite() => Some(*r),
        _ => None,
    }
}
