//! One tesseract engine per worker thread, created on first use, reused across
//! pages and documents (loading the model is the cost this avoids), and
//! recreated every `recycle` pages to bound tesseract's memory growth.

use std::cell::RefCell;
use std::ffi::CString;

use tesseract::plumbing::TessBaseApi;
use tesseract::plumbing::leptonica_plumbing::Pix;
use tesseract::plumbing::leptonica_sys;

use crate::store::Layout;

/// A thread's engine.
struct Engine {
    api: TessBaseApi,
    languages: String,
    pages: u32,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// Text, mean confidence (0-100) and word boxes of one image.
pub struct Recognized {
    pub text: String,
    pub confidence: f64,
    /// Lines and word boxes in pixels of the image (`to_page` is the identity).
    pub layout: Layout,
}

/// Recognizes `pix` with this thread's engine for `languages` (e.g. `eng+deu`)
/// at resolution `dpi` if given, else the image's own, else `default_dpi`.
pub fn recognize(
    pix: &Pix,
    languages: &str,
    dpi: Option<i32>,
    default_dpi: u32,
    recycle: u32,
) -> Result<Recognized, String> {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let stale = slot.as_ref().is_none_or(|e| e.languages != languages || e.pages >= recycle.max(1));
        if stale {
            *slot = None; // free the old engine before loading the new one
            *slot = Some(Engine { api: init(languages)?, languages: languages.into(), pages: 0 });
        }
        let engine = slot.as_mut().expect("engine was just created");
        engine.pages += 1;
        let api = &mut engine.api;
        api.set_image_2(pix);
        // SAFETY: pixGetXRes only reads a field of a valid Pix.
        let xres = unsafe { leptonica_sys::pixGetXRes(AsRef::<leptonica_sys::Pix>::as_ref(pix) as *const _ as *mut _) };
        match dpi {
            Some(d) => api.set_source_resolution(d),
            None if xres <= 0 => api.set_source_resolution(default_dpi as i32),
            None => {}
        }
        api.recognize().map_err(|_| "tesseract could not recognize the image".to_string())?;
        let text = api
            .get_utf8_text()
            .map_err(|_| "tesseract returned no text".to_string())?
            .as_ref()
            .to_string_lossy()
            .into_owned();
        // The TSV rendering of the same recognition (no second pass) is the
        // one place the C API gives every word's box and its line.
        let layout = api
            .get_tsv_text(0)
            .map(|tsv| Layout::from_tsv(&tsv.as_ref().to_string_lossy()))
            .map_err(|_| "tesseract returned no word boxes".to_string())?;
        Ok(Recognized { text, confidence: f64::from(api.mean_text_conf()), layout })
    })
}

/// Loads an engine for `languages`.
pub fn init(languages: &str) -> Result<TessBaseApi, String> {
    // Leptonica's informational chatter ("converting gray + alpha") is not for users.
    // SAFETY: sets a process-wide integer.
    unsafe { leptonica_sys::setMsgSeverity(leptonica_sys::L_SEVERITY_WARNING as i32) };
    let mut api = TessBaseApi::create();
    let lang = CString::new(languages).map_err(|_| format!("bad language list {languages:?}"))?;
    api.init_2(None, Some(&lang)).map_err(|_| {
        format!(
            "tesseract cannot load the languages {languages}; install them \
             (apt-get install tesseract-ocr-<lang> for each) or change ocr.languages"
        )
    })?;
    // The library's default is one uniform block of text (psm 6), which reads
    // two columns straight across and speckles as letters; only the
    // tesseract command line switches to automatic layout analysis itself.
    api.set_page_seg_mode(tesseract::plumbing::tesseract_sys::TessPageSegMode_PSM_AUTO);
    Ok(api)
}
