//! A document's pages as the store keeps them: the text of each page read,
//! and each page's entry in the OCR details (the OCR task's checkpoint).

use serde::{Deserialize, Serialize};

use super::Layout;
use crate::text_enum::text_enum;

/// Where a page's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageSource {
    /// The PDF's own text layer.
    Text,
    /// Tesseract.
    Ocr,
}

text_enum!(PageSource { Text => "text", Ocr => "ocr" });

/// Whether a page has been read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageStatus {
    /// Read; its text (if any) is stored.
    #[default]
    Done,
    /// Every way of reading it failed; `error` says why.
    Failed,
}

text_enum!(PageStatus { Done => "done", Failed => "failed" });

/// A page read by OCR with a mean confidence under this is a poor reading:
/// flagged in its details, logged, and marked by `quire show`.
/// Clean print reads at 85-95; pages read sideways scored 35-46.
pub const POOR_CONFIDENCE: f64 = 60.0;

/// True when an OCR reading of a page is poor: under [`POOR_CONFIDENCE`],
/// with some text (an empty page, a blank back side, is not a poor reading).
pub fn is_poor_reading(confidence: Option<f64>, text: &str) -> bool {
    confidence.is_some_and(|c| c < POOR_CONFIDENCE) && !text.trim().is_empty()
}

/// What was read of a page, as [`crate::store::Store::save_page`] keeps it.
#[derive(Debug, Clone, Copy)]
pub struct PageReading<'a> {
    pub text: &'a str,
    pub source: PageSource,
    /// Tesseract's mean confidence; none for a text layer.
    pub confidence: Option<f64>,
    /// Where the words are, for OCR'd pages.
    pub layout: Option<&'a Layout>,
}

/// A page's text as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub number: i64,
    pub text: String,
    pub source: PageSource,
    pub confidence: Option<f64>,
}

/// One page's entry in `documents.ocr_details.pages`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PageDetail {
    pub status: PageStatus,
    pub source: Option<PageSource>,
    pub chars: usize,
    pub confidence: Option<f64>,
    /// Raster images the page holds (embedded in a PDF page; 1 for an image file).
    pub images: usize,
    /// True when the page was rendered for OCR instead of OCR'ing its images.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rendered: bool,
    /// Degrees the page was turned clockwise to be read upright.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub turned: u32,
    /// The skew straightened before reading, in degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deskewed: Option<f32>,
    /// True when the best reading's confidence is under [`POOR_CONFIDENCE`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub poor: bool,
    pub attempts: u32,
    pub error: Option<String>,
    /// The worker that read (or tried) it: the pages of one document are
    /// read by several workers at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

/// For serde: leave a zero turn out of the details.
fn is_zero(n: &u32) -> bool {
    *n == 0
}
