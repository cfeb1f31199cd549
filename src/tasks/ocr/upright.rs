//! Putting a page upright and straight before it is read, as OCRmyPDF's
//! `--rotate-pages --deskew` do: leptonica's skew finder straightens a page
//! skewed by the feeder, and tesseract's orientation detection
//! (`osd.traineddata`, Debian's `tesseract-ocr-osd`) finds a page fed
//! sideways or upside down. Runs in the OCR child, like all of leptonica and
//! tesseract.

use std::cell::RefCell;
use std::ffi::CString;

use tesseract::plumbing::leptonica_plumbing::memory::RefCountedExclusive;
use tesseract::plumbing::leptonica_plumbing::{Pix, leptonica_sys};
use tesseract::plumbing::tesseract_sys;

/// A Pix this module made, freed on drop.
pub type OwnedPix = RefCountedExclusive<Pix>;

/// Skew below this is left alone: rotating resamples the page, and tesseract
/// reads a fraction of a degree as well as a straight page.
const MIN_SKEW_DEGREES: f32 = 0.3;

/// How sure the orientation detector must be before a page is turned
/// (tesseract's orientation confidence; a clear page of text scores well
/// above it, a page with next to no text below).
const MIN_ORIENTATION_CONFIDENCE: f32 = 3.0;

/// Takes ownership of a Pix leptonica returned; `None` for null.
fn own(ptr: *mut leptonica_sys::Pix) -> Option<OwnedPix> {
    // SAFETY: a fresh, non-null Pix that nobody else holds.
    (!ptr.is_null()).then(|| unsafe { RefCountedExclusive::new(Pix::new_from_pointer(ptr)) })
}

/// The raw pointer of `pix`, for leptonica calls that only read it.
pub(super) fn raw(pix: &Pix) -> *mut leptonica_sys::Pix {
    *AsRef::<*mut leptonica_sys::Pix>::as_ref(pix)
}

/// A straightened copy of `pix` and the skew it had (degrees, positive =
/// counter-clockwise), or `None` when the page is straight or its skew
/// cannot be measured with confidence.
pub fn deskew(pix: &Pix) -> Option<(OwnedPix, f32)> {
    let (mut angle, mut conf) = (0f32, 0f32);
    // Any depth: leptonica binarises a reduced copy to measure the skew, and
    // rotates the page itself (area-mapped, white brought in at the edges).
    // SAFETY: reads `pix`; returns a new Pix (or null) and plain floats.
    let straight =
        unsafe { leptonica_sys::pixFindSkewAndDeskew(raw(pix), 0, &mut angle, &mut conf) };
    let straight = own(straight)?;
    // leptonica's own bar for a measured skew is a confidence of 3.0.
    (conf >= 3.0 && angle.abs() >= MIN_SKEW_DEGREES).then_some((straight, angle))
}

/// The width and height of `pix`, in pixels.
pub fn size(pix: &Pix) -> (u32, u32) {
    // SAFETY: reads two fields of a valid Pix.
    let (w, h) = unsafe {
        (
            leptonica_sys::pixGetWidth(raw(pix)),
            leptonica_sys::pixGetHeight(raw(pix)),
        )
    };
    (w.max(1) as u32, h.max(1) as u32)
}

/// `pix` turned clockwise by `degrees` (90, 180 or 270).
pub fn turn(pix: &Pix, degrees: u32) -> Option<OwnedPix> {
    // SAFETY: reads `pix`, returns a new Pix (or null).
    let turned = unsafe { leptonica_sys::pixRotateOrth(raw(pix), (degrees / 90 % 4) as i32) };
    own(turned)
}

/// `pix` enlarged `factor` times, grey (a 1-bit page is smoothed to grey
/// first, so that its edges are interpolated, not blocky).
pub fn enlarge(pix: &Pix, factor: u32) -> Option<OwnedPix> {
    let f = factor as f32;
    // SAFETY: reads `pix`; each call returns a new Pix (or null), the
    // intermediate one freed here.
    unsafe {
        let mut gray = leptonica_sys::pixConvertTo8(raw(pix), 0);
        if gray.is_null() {
            return None;
        }
        let big = leptonica_sys::pixScale(gray, f, f);
        leptonica_sys::pixDestroy(&mut gray);
        own(big)
    }
}

/// How far the paper's brightness may vary across a page (0-255, between
/// the brightest and darkest of 4x4 tiles, each tile's paper taken as its
/// 90th-percentile grey) before the page counts as unevenly lit. An evenly
/// lit scan varies by a few levels, a low-contrast one too; a phone photo lit
/// from one side, or a shadow at the binding, by 80 and more.
const UNEVEN_LIGHT: u32 = 48;

/// True when the page is unevenly lit (see [`UNEVEN_LIGHT`]): tesseract's
/// one global threshold would lose its darker part.
pub fn unevenly_lit(pix: &Pix) -> bool {
    const TILES: i32 = 4;
    // SAFETY: reads `pix`; every Pix and Box made here is freed here.
    unsafe {
        let mut gray = leptonica_sys::pixConvertTo8(raw(pix), 0);
        if gray.is_null() {
            return false;
        }
        // Small is plenty to see the light, and fast.
        let mut small = leptonica_sys::pixScaleToSize(gray, 256, 0);
        leptonica_sys::pixDestroy(&mut gray);
        if small.is_null() {
            return false;
        }
        let (w, h) = (
            leptonica_sys::pixGetWidth(small),
            leptonica_sys::pixGetHeight(small),
        );
        let mut papers = vec![];
        for ty in 0..TILES {
            for tx in 0..TILES {
                let mut tile_box =
                    leptonica_sys::boxCreate(tx * w / TILES, ty * h / TILES, w / TILES, h / TILES);
                let mut tile =
                    leptonica_sys::pixClipRectangle(small, tile_box, std::ptr::null_mut());
                leptonica_sys::boxDestroy(&mut tile_box);
                if tile.is_null() {
                    continue;
                }
                let mut value = 0u32;
                if leptonica_sys::pixGetRankValue(tile, 1, 0.9, &mut value) == 0 {
                    papers.push(value);
                }
                leptonica_sys::pixDestroy(&mut tile);
            }
        }
        leptonica_sys::pixDestroy(&mut small);
        let (min, max) = (papers.iter().min(), papers.iter().max());
        matches!((min, max), (Some(lo), Some(hi)) if hi - lo > UNEVEN_LIGHT)
    }
}

/// A thread's orientation detector: a tesseract engine loaded with `osd`.
struct Detector(*mut tesseract_sys::TessBaseAPI);

impl Drop for Detector {
    fn drop(&mut self) {
        // SAFETY: the handle came from TessBaseAPICreate and is freed once.
        unsafe { tesseract_sys::TessBaseAPIDelete(self.0) };
    }
}

thread_local! {
    static DETECTOR: RefCell<Option<Detector>> = const { RefCell::new(None) };
}

/// How far clockwise `pix` must be turned to be upright (0, 90, 180 or
/// 270), when the detector is sure; `Ok(None)` when it is not (a page with
/// little text). `dpi` is the page's resolution, if known.
pub fn orientation(pix: &Pix, dpi: Option<i32>) -> Result<Option<u32>, String> {
    DETECTOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(load_detector()?);
        }
        let handle = slot.as_ref().expect("detector was just loaded").0;
        let (mut degrees, mut conf, mut script_conf) = (0, 0f32, 0f32);
        let mut script = std::ptr::null();
        // SAFETY: a live handle; tesseract copies what it needs of the image
        // and reads it only during this call.
        let found = unsafe {
            tesseract_sys::TessBaseAPISetImage2(handle, raw(pix).cast());
            if let Some(d) = dpi.filter(|d| *d > 0) {
                tesseract_sys::TessBaseAPISetSourceResolution(handle, d);
            }
            tesseract_sys::TessBaseAPIDetectOrientationScript(
                handle,
                &mut degrees,
                &mut conf,
                &mut script,
                &mut script_conf,
            ) != 0
        };
        if !found || conf < MIN_ORIENTATION_CONFIDENCE {
            return Ok(None);
        }
        // `degrees` is the page's orientation, counter-clockwise from
        // upright (tesseract's "Orientation in degrees"); turning it upright
        // takes the rest of the circle clockwise (its "Rotate").
        Ok(Some((360 - degrees.rem_euclid(360) as u32) % 360))
    })
}

/// Loads the `osd` model.
fn load_detector() -> Result<Detector, String> {
    // SAFETY: create, then init; a failed init is deleted by Drop.
    let detector = Detector(unsafe { tesseract_sys::TessBaseAPICreate() });
    let lang = CString::new("osd").expect("no NUL");
    let rc =
        unsafe { tesseract_sys::TessBaseAPIInit3(detector.0, std::ptr::null(), lang.as_ptr()) };
    if rc != 0 {
        return Err("tesseract's orientation model is missing; install it with \
             apt-get install tesseract-ocr-osd"
            .into());
    }
    // SAFETY: a live handle.
    unsafe {
        tesseract_sys::TessBaseAPISetPageSegMode(
            detector.0,
            tesseract_sys::TessPageSegMode_PSM_OSD_ONLY,
        )
    };
    Ok(detector)
}
