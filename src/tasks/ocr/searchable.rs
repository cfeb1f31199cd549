//! Writing a document's searchable PDF, in the OCR child (like everything
//! that parses a document): the original pages, each OCR'd page with an
//! invisible text layer laid over it word by word, so that selecting or
//! searching in any viewer finds the right words on the page.
//!
//! This is what tesseract's PDF renderer and OCRmyPDF do, with their font:
//! text in render mode 3 (invisible) in a "glyphless" font whose every glyph
//! is an empty box half an em wide, stretched (`Tz`) over each word's box.
//! The font maps its codes to Unicode (`ToUnicode`), so text extraction gives
//! the words back.
//!
//! - A PDF keeps its pages as they are (images are not re-encoded); pages
//!   read from their own text layer are left alone.
//! - An image file becomes one page per image at the image's resolution: a
//!   JPEG is embedded as it is, other images losslessly (Flate).
//! - A page OCR'd after turning it upright gets a `/Rotate` that shows it
//!   upright; its words are placed through the same turn.

use std::io::{BufWriter, Write};
use std::path::Path;

use lopdf::{Dictionary, Document, Object, ObjectId, Stream, dictionary};
use serde::{Deserialize, Serialize};
use tesseract::plumbing::leptonica_plumbing::Pix;
use tesseract::plumbing::leptonica_plumbing::memory::RefCountedExclusive;
use tesseract::plumbing::leptonica_sys;

use super::image;
use super::pdf::{inherited, media_box, rotation};
use super::reader::OpenDocument;
use crate::detect::Kind;
use crate::store::{Affine, Layout};

/// Tesseract's glyphless font (`pdf.ttf` in its tessdata; Apache-2.0, see
/// `assets/README.md`): 572 bytes, one empty glyph.
const GLYPHLESS_FONT: &[u8] = include_bytes!("../../../assets/glyphless.ttf");

/// What the writer needs to know of one page: where its words are (none for
/// pages read from their text layer, or not read) and how far it was turned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageOverlay {
    /// 1-based.
    pub number: usize,
    pub layout: Option<Layout>,
    /// Degrees clockwise the page was turned to read it upright.
    pub turned: u32,
}

/// Writes the searchable PDF of `doc` to `out` (created or truncated, then
/// synced) and returns its page count. `default_dpi` is the resolution of
/// images that record none.
pub fn write(
    doc: &OpenDocument,
    pages: &[PageOverlay],
    default_dpi: u32,
    out: &Path,
) -> Result<usize, String> {
    let mut pdf = match doc.pdf() {
        Some(p) => {
            let mut d = p.inner().clone();
            // A file opened with the empty password is written out plain.
            d.trailer.remove(b"Encrypt");
            d.encryption_state = None;
            d
        }
        None => images_to_pdf(doc, default_dpi)?,
    };
    let font = add_font(&mut pdf);
    let ids = pdf.get_pages();
    for overlay in pages {
        let Some(&page) = ids.get(&(overlay.number as u32)) else {
            return Err(format!("the document has no page {}", overlay.number));
        };
        let Some(layout) = overlay.layout.as_ref().filter(|l| l.words() > 0) else {
            continue;
        };
        overlay_text(&mut pdf, page, layout, font)
            .map_err(|e| format!("page {}: {e}", overlay.number))?;
        if overlay.turned % 360 != 0 {
            let rotate = (rotation(&pdf, page) + i64::from(overlay.turned)).rem_euclid(360);
            let dict = pdf.get_dictionary_mut(page).map_err(|e| e.to_string())?;
            dict.set("Rotate", rotate);
        }
    }
    let file =
        std::fs::File::create(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut w = BufWriter::new(file);
    let written = pdf
        .save_to(&mut w)
        .map_err(|e| e.to_string())
        .and_then(|()| w.flush().map_err(|e| e.to_string()))
        .and_then(|()| w.get_ref().sync_all().map_err(|e| e.to_string()));
    written.map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(ids.len())
}

/// Adds the glyphless font (a Type 0 font over a TrueType CID font, Identity-H
/// encoding: a code is a UTF-16 unit) and returns the font's id.
fn add_font(pdf: &mut Document) -> ObjectId {
    let mut file = Stream::new(
        dictionary! { "Length1" => GLYPHLESS_FONT.len() as i64 },
        GLYPHLESS_FONT.to_vec(),
    );
    let _ = file.compress();
    let file = pdf.add_object(file);
    let descriptor = pdf.add_object(dictionary! {
        "Type" => "FontDescriptor",
        "FontName" => "GlyphLessFont",
        "Flags" => 5,
        "FontBBox" => vec![0.into(), 0.into(), 500.into(), 1000.into()],
        "ItalicAngle" => 0,
        "Ascent" => 1000,
        "Descent" => -1,
        "CapHeight" => 1000,
        "StemV" => 80,
        "FontFile2" => file,
    });
    // Every code shows glyph 1, the font's one (empty) glyph.
    let mut map = Stream::new(Dictionary::new(), [0u8, 1].repeat(65536));
    let _ = map.compress();
    let map = pdf.add_object(map);
    let cid_font = pdf.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "CIDFontType2",
        "BaseFont" => "GlyphLessFont",
        "CIDSystemInfo" => dictionary! {
            "Registry" => Object::string_literal("Adobe"),
            "Ordering" => Object::string_literal("Identity"),
            "Supplement" => 0,
        },
        "FontDescriptor" => descriptor,
        "CIDToGIDMap" => map,
        "DW" => 500,
    });
    let cmap = b"/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n\
1 beginbfrange\n<0000> <FFFF> <0000>\nendbfrange\n\
endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n";
    let mut cmap = Stream::new(Dictionary::new(), cmap.to_vec());
    let _ = cmap.compress();
    let cmap = pdf.add_object(cmap);
    pdf.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type0",
        "BaseFont" => "GlyphLessFont",
        "Encoding" => "Identity-H",
        "DescendantFonts" => vec![cid_font.into()],
        "ToUnicode" => cmap,
    })
}

/// Lays `layout`'s words, invisible, over `page`.
fn overlay_text(
    pdf: &mut Document,
    page: ObjectId,
    layout: &Layout,
    font: ObjectId,
) -> Result<(), String> {
    let media = media_box(pdf, page).ok_or("it has no usable MediaBox")?;
    let to_user = layout
        .to_page
        .then(&page_to_user(media, rotation(pdf, page)));
    let name = add_font_resource(pdf, page, font)?;
    let text = text_layer(layout, &to_user, &name);
    // The page's own content may leave the graphics state changed (a `cm`
    // with no `Q`): wrapped in q ... Q, ours starts from the page's own
    // coordinates.
    let open = pdf.add_object(Stream::new(Dictionary::new(), b"q\n".to_vec()));
    let mut close = Stream::new(Dictionary::new(), [b"Q\n".as_slice(), &text].concat());
    let _ = close.compress();
    let close = pdf.add_object(close);
    let mut contents: Vec<Object> = vec![open.into()];
    contents.extend(pdf.get_page_contents(page).into_iter().map(Object::from));
    contents.push(close.into());
    let dict = pdf.get_dictionary_mut(page).map_err(|e| e.to_string())?;
    dict.set("Contents", contents);
    Ok(())
}

/// The content stream drawing `layout`'s words invisibly: each word's text
/// (with a space after all but a line's last word, so that text extraction
/// keeps the words apart) stretched over the word's box, from its left edge
/// to the next word's, the line's height tall.
fn text_layer(layout: &Layout, to_user: &Affine, font: &[u8]) -> Vec<u8> {
    let mut out = b"BT\n3 Tr\n".to_vec();
    let font = String::from_utf8_lossy(font);
    for line in &layout.lines {
        let [_, top, _, bottom] = line.bbox;
        let size = f64::from((bottom - top).max(1));
        let _ = writeln!(out, "/{font} {} Tf", num(size));
        for (i, word) in line.words.iter().enumerate() {
            let [left, _, right, _] = word.bbox;
            let next = line.words.get(i + 1).map(|w| w.bbox[0]);
            let text = match next {
                Some(_) => format!("{} ", word.text),
                None => word.text.clone(),
            };
            let width = f64::from(next.filter(|n| *n > left).unwrap_or(right) - left).max(1.0);
            let units: Vec<u16> = text.encode_utf16().collect();
            if units.is_empty() {
                continue;
            }
            // Glyphs are half an em wide: stretch them to the width.
            let stretch = 100.0 * width / (units.len() as f64 * 0.5 * size);
            // Text space: x along the word, y up from the line's bottom, in
            // pixels of the image read; then on to the page.
            let m = Affine::new([1.0, 0.0, 0.0, -1.0, f64::from(left), f64::from(bottom)])
                .then(to_user);
            let values = [m.a, m.b, m.c, m.d, m.e, m.f, stretch];
            if values.iter().any(|v| !v.is_finite()) {
                continue;
            }
            let hex: String = units.iter().map(|u| format!("{u:04X}")).collect();
            let _ = writeln!(
                out,
                "{} {} {} {} {} {} Tm {} Tz <{hex}> Tj",
                num(m.a),
                num(m.b),
                num(m.c),
                num(m.d),
                num(m.e),
                num(m.f),
                num(stretch)
            );
        }
    }
    out.extend_from_slice(b"ET\n");
    out
}

/// A number for a content stream: no exponent, at most 4 decimals.
fn num(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// The map from the page as displayed (fractions of its width and height, y
/// down) to PDF user space, for a page whose MediaBox is `[x0, y0, x1, y1]`
/// and which is shown turned clockwise by `rotate` degrees.
fn page_to_user([x0, y0, x1, y1]: [f64; 4], rotate: i64) -> Affine {
    let (w, h) = (x1 - x0, y1 - y0);
    match rotate.rem_euclid(360) {
        90 => Affine::new([0.0, h, w, 0.0, x0, y0]),
        180 => Affine::new([-w, 0.0, 0.0, h, x1, y0]),
        270 => Affine::new([0.0, -h, -w, 0.0, x1, y1]),
        _ => Affine::new([w, 0.0, 0.0, -h, x0, y1]),
    }
}

/// Gives `page` its own resource dictionary (a copy of what it had or
/// inherited, which other pages may share) with the font added under a name
/// the page does not use yet; returns that name.
fn add_font_resource(
    pdf: &mut Document,
    page: ObjectId,
    font: ObjectId,
) -> Result<Vec<u8>, String> {
    let mut resources = match inherited(pdf, page, b"Resources") {
        Some(Object::Dictionary(d)) => d,
        _ => Dictionary::new(),
    };
    let mut fonts = match resources.get(b"Font") {
        Ok(Object::Reference(id)) => pdf.get_dictionary(*id).cloned().unwrap_or_default(),
        Ok(Object::Dictionary(d)) => d.clone(),
        _ => Dictionary::new(),
    };
    let name = (0..)
        .map(|i| format!("QuireOCR{i}").into_bytes())
        .find(|n| !fonts.has(n))
        .expect("some name is free");
    fonts.set(name.clone(), font);
    resources.set("Font", fonts);
    let dict = pdf.get_dictionary_mut(page).map_err(|e| e.to_string())?;
    dict.set("Resources", resources);
    Ok(name)
}

/// A PDF with one page per image of `doc`, each the size of its image at the
/// image's resolution (`default_dpi` when it records none).
fn images_to_pdf(doc: &OpenDocument, default_dpi: u32) -> Result<Document, String> {
    let mut pdf = Document::with_version("1.5");
    let pages_id = pdf.new_object_id();
    let mut kids = vec![];
    for i in 0..doc.pages() {
        let pix = image::read_page(doc.kind(), doc.data(), i)?;
        let (xres, yres) = resolution(&pix, default_dpi);
        let image = match jpeg_components(doc) {
            Some(components) => jpeg_stream(doc.data(), &pix, components),
            None => raw_stream(&pix).map_err(|e| format!("image {}: {e}", i + 1))?,
        };
        let (w, h) = super::upright::size(&pix);
        let (w_pt, h_pt) = (f64::from(w) * 72.0 / xres, f64::from(h) * 72.0 / yres);
        let image = pdf.add_object(image);
        let draw = format!("q {} 0 0 {} 0 0 cm /Im0 Do Q\n", num(w_pt), num(h_pt));
        let content = pdf.add_object(Stream::new(Dictionary::new(), draw.into_bytes()));
        kids.push(Object::from(pdf.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), w_pt.into(), h_pt.into()],
            "Resources" => dictionary! { "XObject" => dictionary! { "Im0" => image } },
            "Contents" => content,
        })));
    }
    let count = kids.len() as i64;
    pdf.objects.insert(
        pages_id,
        dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }.into(),
    );
    let catalog = pdf.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    pdf.trailer.set("Root", catalog);
    Ok(pdf)
}

/// The image's resolution in pixels per inch, `default_dpi` when it has none.
fn resolution(pix: &Pix, default_dpi: u32) -> (f64, f64) {
    let raw = super::upright::raw(pix);
    // SAFETY: reads two fields of a valid Pix.
    let (x, y) = unsafe {
        (
            leptonica_sys::pixGetXRes(raw),
            leptonica_sys::pixGetYRes(raw),
        )
    };
    let or_default = |r: i32| {
        if r > 0 {
            f64::from(r)
        } else {
            f64::from(default_dpi)
        }
    };
    (or_default(x), or_default(y))
}

/// The number of colour components of a JPEG file that can go into the PDF
/// as it is (gray or RGB; CMYK and anything odd is decoded instead).
fn jpeg_components(doc: &OpenDocument) -> Option<u8> {
    if doc.kind() != Kind::Jpeg {
        return None;
    }
    let data = doc.data();
    let mut i = 2;
    // Walk the marker segments to the frame header (SOF0-SOF15 but DHT,
    // JPG and DAC): length, precision, height, width, components.
    while i + 9 < data.len() {
        if data[i] != 0xFF {
            return None;
        }
        let marker = data[i + 1];
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let components = data[i + 9];
            return (data[i + 4] == 8 && matches!(components, 1 | 3)).then_some(components);
        }
        i += 2 + len;
    }
    None
}

/// A JPEG file as an image XObject, not re-encoded.
fn jpeg_stream(data: &[u8], pix: &Pix, components: u8) -> Stream {
    let (w, h) = super::upright::size(pix);
    let space = if components == 1 {
        "DeviceGray"
    } else {
        "DeviceRGB"
    };
    Stream::new(
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Image",
            "Width" => i64::from(w),
            "Height" => i64::from(h),
            "ColorSpace" => space,
            "BitsPerComponent" => 8,
            "Filter" => "DCTDecode",
        },
        data.to_vec(),
    )
    .with_compression(false)
}

/// A decoded image as a Flate-compressed image XObject: 1-bit images stay
/// 1-bit, colour maps and alpha go (alpha onto white), everything else is
/// 8-bit gray or RGB.
fn raw_stream(pix: &Pix) -> Result<Stream, String> {
    let raw = super::upright::raw(pix);
    // SAFETY: each call reads a valid Pix and returns a new one (or null);
    // each is destroyed here, the last when its owner `p` drops.
    let samples = unsafe {
        let mut p =
            leptonica_sys::pixRemoveColormap(raw, leptonica_sys::REMOVE_CMAP_BASED_ON_SRC as i32);
        let depth = if p.is_null() {
            0
        } else {
            leptonica_sys::pixGetDepth(p)
        };
        if !p.is_null() && depth != 1 && depth != 8 && depth != 32 {
            let q = leptonica_sys::pixConvertTo8(p, 0);
            leptonica_sys::pixDestroy(&mut p);
            p = q;
        }
        if !p.is_null() && leptonica_sys::pixGetDepth(p) == 32 {
            let q = leptonica_sys::pixAlphaBlendUniform(p, 0xffffff00);
            leptonica_sys::pixDestroy(&mut p);
            p = q;
        }
        if p.is_null() {
            return Err("the image cannot be converted for the PDF".into());
        }
        // A row's spare bits go into the PDF's last byte of the row: zero them.
        leptonica_sys::pixSetPadBits(p, 0);
        let p = RefCountedExclusive::new(Pix::new_from_pointer(p));
        image::pix_samples(&p).ok_or("the image cannot be converted for the PDF")?
    };
    let (depth, w, h, body) = samples;
    let (space, bits, decode) = match depth {
        1 => ("DeviceGray", 1, true), // leptonica's 1 is black, the opposite of PDF gray
        8 => ("DeviceGray", 8, false),
        _ => ("DeviceRGB", 8, false),
    };
    let mut dict = dictionary! {
        "Type" => "XObject",
        "Subtype" => "Image",
        "Width" => i64::from(w),
        "Height" => i64::from(h),
        "ColorSpace" => space,
        "BitsPerComponent" => bits,
    };
    if decode {
        dict.set("Decode", vec![1.into(), 0.into()]);
    }
    // zlib's default level, not lopdf's `compress` (the best level): on a
    // page of 8 million samples the best level took several times as long
    // for a file a few per cent smaller.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&body).map_err(|e| e.to_string())?;
    dict.set("Filter", "FlateDecode");
    Ok(Stream::new(dict, z.finish().map_err(|e| e.to_string())?).with_compression(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(-0.00001), "0");
        assert_eq!(num(612.5), "612.5");
        assert_eq!(num(1.0 / 3.0), "0.3333");
    }

    #[test]
    fn the_displayed_page_maps_onto_the_media_box() {
        let media = [0.0, 0.0, 600.0, 800.0];
        let close =
            |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9;
        // Upright: the top left corner is (x0, y1).
        assert!(close(page_to_user(media, 0).apply(0.0, 0.0), (0.0, 800.0)));
        // Shown turned a quarter clockwise, the displayed top left is the
        // MediaBox's bottom left, and the displayed top right its top left.
        assert!(close(page_to_user(media, 90).apply(0.0, 0.0), (0.0, 0.0)));
        assert!(close(page_to_user(media, 90).apply(1.0, 0.0), (0.0, 800.0)));
        assert!(close(
            page_to_user(media, 180).apply(0.0, 0.0),
            (600.0, 0.0)
        ));
        assert!(close(
            page_to_user(media, 270).apply(0.0, 0.0),
            (600.0, 800.0)
        ));
    }
}
