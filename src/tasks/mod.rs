//! The tasks the worker pool runs, one processor per task type: OCR (each
//! page's text, [`ocr`]), indexing (into full-text search, [`index`]) and
//! the searchable PDF ([`pdf`]).

pub mod index;
pub mod ocr;
pub mod pdf;

use std::sync::Arc;

use crate::app::App;
use crate::worker::Processors;

/// The real processors, configured from `app`.
pub fn processors(app: &App) -> Processors {
    Processors {
        ocr: Arc::new(ocr::OcrProcessor::new(app.config.ocr.clone())),
        indexing: Arc::new(index::IndexProcessor::new(app.config.index.batch_pages)),
        pdf: Arc::new(pdf::PdfProcessor::new(&app.config)),
    }
}
