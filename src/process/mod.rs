//! The processors the worker pool runs: OCR (page text) and indexing (full-text
//! search), plus search itself.

pub mod index;
pub mod ocr;
pub mod search;

use std::sync::Arc;

use crate::app::App;
use crate::worker::Processors;

/// The real processors, configured from `app`.
pub fn processors(app: &App) -> Processors {
    Processors {
        ocr: Arc::new(ocr::OcrProcessor::new(app.config.ocr.clone())),
        indexing: Arc::new(index::IndexProcessor::new(app.config.index.batch_pages)),
    }
}
