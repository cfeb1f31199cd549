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

/// How tesseract turns the page black and white before reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// One threshold for the whole page (Otsu's, tesseract's default).
    Global,
    /// Sauvola's local thresholds, for unevenly lit pages: a phone photo or
    /// a shadow at the binding loses its darker side to one threshold.
    /// Measured with tesseract 5.3: a photo shaded to 50% grey at one side
    /// read at CER 0.26 with whole line ends missing, 0.000 with Sauvola;
    /// the same text on clean pages; on impulse noise a stray mark or two
    /// more (CER 0.003-0.006 against 0.000), hence not for every page.
    Local,
}

/// Recognizes `pix` with this thread's engine for `languages` (e.g. `eng+deu`)
/// at resolution `dpi` if given, else the image's own, else `default_dpi`.
pub fn recognize(
    pix: &Pix,
    languages: &str,
    dpi: Option<i32>,
    threshold: Threshold,
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
        let method = match threshold {
            Threshold::Global => c"0",
            Threshold::Local => c"2",
        };
        // Tesseracts before 5.3 have no Sauvola and read as before.
        if api.set_variable(c"thresholding_method", method).is_err() && threshold == Threshold::Local {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                log::warn!(
                    "this tesseract has no local thresholding (5.3 or newer has); \
                     unevenly lit pages may lose text"
                )
            });
        }
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

/// The languages of `languages` (e.g. `eng+spa`) that tesseract cannot load.
/// Tesseract starts with whatever part of a list it finds, so a successful
/// [`init`] does not mean every language is there; this asks it which
/// ones it loaded.
pub fn missing_languages(languages: &str) -> Vec<String> {
    use tesseract::plumbing::tesseract_sys as sys;
    struct Api(*mut sys::TessBaseAPI);
    impl Drop for Api {
        fn drop(&mut self) {
            // SAFETY: created by TessBaseAPICreate, deleted once.
            unsafe { sys::TessBaseAPIDelete(self.0) };
        }
    }
    let wanted: Vec<String> = languages.split('+').map(str::to_owned).collect();
    let Ok(lang) = CString::new(languages) else {
        return wanted;
    };
    // SAFETY: a fresh handle, initialised, then read; the array it returns
    // is freed with TessDeleteTextArray.
    let loaded: Vec<String> = unsafe {
        let api = Api(sys::TessBaseAPICreate());
        if sys::TessBaseAPIInit3(api.0, std::ptr::null(), lang.as_ptr()) != 0 {
            return wanted;
        }
        let list = sys::TessBaseAPIGetLoadedLanguagesAsVector(api.0);
        let mut loaded = vec![];
        let mut i = 0;
        while !list.is_null() && !(*list.add(i)).is_null() {
            loaded.push(
                std::ffi::CStr::from_ptr(*list.add(i))
                    .to_string_lossy()
                    .into_owned(),
            );
            i += 1;
        }
        if !list.is_null() {
            sys::TessDeleteTextArray(list);
        }
        loaded
    };
    wanted.into_iter().filter(|w| !loaded.contains(w)).collect()
}
