//! End-to-end tests of `page_images` on small hand-built documents, and of
//! the content-stream scanning that finds what a page draws.

use super::*;
use pdf_extract::{Dictionary, Object, Stream};

/// A document with one page tree node holding `resources`, one page with
/// `contents`, and the given extra objects.
fn doc_with(
    objects: Vec<(ObjectId, Object)>,
    resources: Dictionary,
    contents: &[u8],
) -> (Document, ObjectId) {
    let mut doc = Document::with_version("1.7");
    for (id, object) in objects {
        doc.objects.insert(id, object);
    }
    let content_id = doc.add_object(Stream::new(Dictionary::new(), contents.to_vec()));
    let pages_id = doc.new_object_id();
    let page_id = doc.add_object(Dictionary::from_iter([
        ("Type", Object::Name(b"Page".to_vec())),
        ("Parent", Object::Reference(pages_id)),
        ("Contents", Object::Reference(content_id)),
    ]));
    doc.objects.insert(
        pages_id,
        Object::Dictionary(Dictionary::from_iter([
            ("Type", Object::Name(b"Pages".to_vec())),
            ("Kids", Object::Array(vec![Object::Reference(page_id)])),
            ("Count", Object::Integer(1)),
            ("Resources", Object::Dictionary(resources)),
        ])),
    );
    (doc, page_id)
}

fn image(width: i64, height: i64, extra: Vec<(&str, Object)>, data: Vec<u8>) -> Object {
    let mut dict = Dictionary::from_iter([
        ("Type", Object::Name(b"XObject".to_vec())),
        ("Subtype", Object::Name(b"Image".to_vec())),
        ("Width", Object::Integer(width)),
        ("Height", Object::Integer(height)),
    ]);
    for (k, v) in extra {
        dict.set(k, v);
    }
    Object::Stream(Stream::new(dict, data))
}

fn name(n: &str) -> Object {
    Object::Name(n.as_bytes().to_vec())
}

fn xobjects(entries: &[(&str, ObjectId)]) -> Dictionary {
    let xobject: Dictionary = entries
        .iter()
        .map(|&(n, id)| (n, Object::Reference(id)))
        .collect();
    Dictionary::from_iter([("XObject", Object::Dictionary(xobject))])
}

#[test]
fn do_names_skip_strings_and_inline_images() {
    let content = b"q (a /Fake Do) Tj /Im#31 Do BI /W 1 ID \x00Do EI Q /Fm0 Do /Im1 Do % /X Do\n";
    assert_eq!(drawn_names(content), vec![b"Im1".to_vec(), b"Fm0".to_vec()]);
}

#[test]
fn gray_image_from_inherited_resources_with_predictor() {
    let img_id = (10, 0);
    let mut deflated = Vec::new();
    {
        use flate2::{Compression, write::ZlibEncoder};
        use std::io::Write;
        let mut e = ZlibEncoder::new(&mut deflated, Compression::default());
        // Two rows of 2 gray pixels with PNG Sub filters.
        e.write_all(&[1, 100, 5, 1, 200, 10]).unwrap();
        e.finish().unwrap();
    }
    let parms = Dictionary::from_iter([
        ("Predictor", Object::Integer(15)),
        ("Columns", Object::Integer(2)),
    ]);
    let img = image(
        2,
        2,
        vec![
            ("ColorSpace", name("DeviceGray")),
            ("BitsPerComponent", Object::Integer(8)),
            ("Filter", Object::Array(vec![name("FlateDecode")])),
            (
                "DecodeParms",
                Object::Array(vec![Object::Dictionary(parms)]),
            ),
        ],
        deflated,
    );
    let (doc, page) = doc_with(
        vec![(img_id, img)],
        xobjects(&[("Im0", img_id)]),
        b"/Im0 Do /Im0 Do",
    );
    let (images, bad) = page_images(&doc, page, 1000).unwrap();
    assert_eq!(bad, 0);
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].data, b"P5\n2 2\n255\n\x64\x69\xc8\xd2");
}

#[test]
fn eight_bit_rows_are_copied_unless_a_decode_array_maps_them() {
    let rgb = image(
        2,
        1,
        vec![
            ("ColorSpace", name("DeviceRGB")),
            ("BitsPerComponent", Object::Integer(8)),
        ],
        vec![1, 2, 3, 250, 251, 252],
    );
    let inverted = image(
        2,
        1,
        vec![
            ("ColorSpace", name("DeviceGray")),
            ("BitsPerComponent", Object::Integer(8)),
            (
                "Decode",
                Object::Array(vec![Object::Integer(1), Object::Integer(0)]),
            ),
        ],
        vec![0, 200],
    );
    for (img, want) in [
        (rgb, &b"P6\n2 1\n255\n\x01\x02\x03\xfa\xfb\xfc"[..]),
        (inverted, &b"P5\n2 1\n255\n\xff\x37"[..]),
    ] {
        let (doc, page) = doc_with(
            vec![((10, 0), img)],
            xobjects(&[("Im0", (10, 0))]),
            b"/Im0 Do",
        );
        let (images, bad) = page_images(&doc, page, 1000).unwrap();
        assert_eq!((bad, images.len()), (0, 1));
        assert_eq!(images[0].data, want);
    }
}

#[test]
fn one_bit_gray_and_masks_become_pbm() {
    let (gray, mask, inverted) = ((10, 0), (11, 0), (12, 0));
    let objects = vec![
        (
            gray,
            image(
                3,
                1,
                vec![
                    ("ColorSpace", name("DeviceGray")),
                    ("BitsPerComponent", Object::Integer(1)),
                ],
                vec![0b0100_0000],
            ),
        ),
        (
            mask,
            image(
                3,
                1,
                vec![("ImageMask", Object::Boolean(true))],
                vec![0b0100_0000],
            ),
        ),
        (
            inverted,
            image(
                3,
                1,
                vec![
                    ("ImageMask", Object::Boolean(true)),
                    (
                        "Decode",
                        Object::Array(vec![Object::Integer(1), Object::Integer(0)]),
                    ),
                ],
                vec![0b0100_0000],
            ),
        ),
    ];
    let res = xobjects(&[("A", gray), ("B", mask), ("C", inverted)]);
    let (doc, page) = doc_with(objects, res, b"/A Do /B Do /C Do");
    let (images, bad) = page_images(&doc, page, 1000).unwrap();
    assert_eq!(bad, 0);
    let bodies: Vec<&[u8]> = images
        .iter()
        .map(|i| &i.data[b"P4\n3 1\n".len()..])
        .collect();
    assert_eq!(
        bodies,
        [&[0b1011_1111u8][..], &[0b1011_1111], &[0b0100_0000]]
    );
}

#[test]
fn indexed_and_cmyk_become_rgb() {
    let (indexed, cmyk) = ((10, 0), (11, 0));
    let palette = Object::String(
        vec![255, 0, 0, 0, 0, 255],
        pdf_extract::StringFormat::Hexadecimal,
    );
    let cs = Object::Array(vec![
        name("Indexed"),
        name("DeviceRGB"),
        Object::Integer(1),
        palette,
    ]);
    let objects = vec![
        (
            indexed,
            image(
                2,
                1,
                vec![("ColorSpace", cs), ("BitsPerComponent", Object::Integer(1))],
                vec![0b0100_0000],
            ),
        ),
        (
            cmyk,
            image(
                1,
                1,
                vec![
                    ("ColorSpace", name("DeviceCMYK")),
                    ("BitsPerComponent", Object::Integer(8)),
                ],
                vec![0, 255, 255, 0],
            ),
        ),
    ];
    let (doc, page) = doc_with(
        objects,
        xobjects(&[("I", indexed), ("C", cmyk)]),
        b"/I Do /C Do",
    );
    let (images, _) = page_images(&doc, page, 1000).unwrap();
    assert_eq!(images[0].data, b"P6\n2 1\n255\n\xff\x00\x00\x00\x00\xff");
    assert_eq!(images[1].data, b"P6\n1 1\n255\n\xff\x00\x00");
}

#[test]
fn forms_are_followed_with_bounded_depth_and_cycles() {
    let (img, f1, f2, f3) = ((10, 0), (11, 0), (12, 0), (13, 0));
    let form = |res: Dictionary, content: &[u8]| {
        let dict = Dictionary::from_iter([
            ("Subtype", name("Form")),
            ("Resources", Object::Dictionary(res)),
        ]);
        Object::Stream(Stream::new(dict, content.to_vec()))
    };
    let objects = vec![
        (
            img,
            image(
                1,
                1,
                vec![
                    ("ColorSpace", name("DeviceGray")),
                    ("BitsPerComponent", Object::Integer(8)),
                ],
                vec![7],
            ),
        ),
        // f1 draws the image and f2; f2 draws f1 again (a cycle) and f3,
        // which is one level too deep.
        (
            f1,
            form(xobjects(&[("Im", img), ("F", f2)]), b"/Im Do /F Do"),
        ),
        (
            f2,
            form(
                xobjects(&[("Back", f1), ("Deep", f3)]),
                b"/Back Do /Deep Do",
            ),
        ),
        (f3, form(xobjects(&[("Im", img)]), b"/Im Do")),
    ];
    let (doc, page) = doc_with(objects, xobjects(&[("F1", f1)]), b"/F1 Do");
    let (images, bad) = page_images(&doc, page, 1000).unwrap();
    assert_eq!((images.len(), bad), (1, 1));
}

#[test]
fn pixel_limit_is_checked_before_decoding() {
    let img = (10, 0);
    // The data is garbage: the size check must come first.
    let objects = vec![(
        img,
        image(
            35000,
            35000,
            vec![("Filter", name("FlateDecode"))],
            vec![1, 2, 3],
        ),
    )];
    let (doc, page) = doc_with(objects, xobjects(&[("Im", img)]), b"/Im Do");
    let err = page_images(&doc, page, 100_000_000).unwrap_err();
    assert!(err.contains("35000x35000"), "{err}");
}

#[test]
fn unsupported_and_damaged_images_are_counted() {
    let (jbig2, short, odd) = ((10, 0), (11, 0), (12, 0));
    let objects = vec![
        (
            jbig2,
            image(8, 8, vec![("Filter", name("JBIG2Decode"))], vec![0; 8]),
        ),
        (
            short,
            image(
                8,
                8,
                vec![
                    ("ColorSpace", name("DeviceGray")),
                    ("BitsPerComponent", Object::Integer(8)),
                ],
                vec![0; 10],
            ),
        ),
        (
            odd,
            image(
                8,
                8,
                vec![
                    ("ColorSpace", name("Lab")),
                    ("BitsPerComponent", Object::Integer(8)),
                ],
                vec![0; 192],
            ),
        ),
    ];
    let (doc, page) = doc_with(
        objects,
        xobjects(&[("A", jbig2), ("B", short), ("C", odd)]),
        b"/A Do /B Do /C Do",
    );
    assert_eq!(page_images(&doc, page, 1000).unwrap().1, 3);
}

#[test]
fn ccitt_tiff_header() {
    let img = (10, 0);
    let parms =
        Dictionary::from_iter([("K", Object::Integer(-1)), ("Columns", Object::Integer(16))]);
    let objects = vec![(
        img,
        image(
            16,
            4,
            vec![
                ("Filter", name("CCITTFaxDecode")),
                ("DecodeParms", Object::Dictionary(parms)),
                ("BitsPerComponent", Object::Integer(1)),
                ("ColorSpace", name("DeviceGray")),
            ],
            vec![0xaa; 5],
        ),
    )];
    let (doc, page) = doc_with(objects, xobjects(&[("Im", img)]), b"/Im Do");
    let (images, _) = page_images(&doc, page, 1000).unwrap();
    let tiff = &images[0].data;
    assert_eq!(images[0].format, "tiff-ccitt");
    assert_eq!(&tiff[..4], b"II*\0");
    let entries = u16::from_le_bytes([tiff[8], tiff[9]]) as usize;
    let offset = 8 + 2 + entries * 12 + 4;
    assert_eq!(&tiff[offset..], &[0xaa; 5]);
    // Compression 4, WhiteIsZero.
    let value = |tag: u16| {
        (0..entries)
            .map(|i| &tiff[10 + i * 12..22 + i * 12])
            .find(|e| u16::from_le_bytes([e[0], e[1]]) == tag)
            .map(|e| u32::from_le_bytes([e[8], e[9], e[10], e[11]]))
    };
    assert_eq!(
        (value(259), value(262), value(273)),
        (Some(4), Some(0), Some(offset as u32))
    );
}

/// A JPEG header: SOI, optional APP14 Adobe, SOF0, SOS.
fn jpeg_header(width: u16, height: u16, components: u8, adobe: bool) -> Vec<u8> {
    let mut j = vec![0xff, 0xd8];
    if adobe {
        j.extend_from_slice(&[0xff, 0xee, 0, 14]);
        j.extend_from_slice(b"Adobe\0\x64\0\0\0\0\x02");
    }
    let [w1, w0] = width.to_be_bytes();
    let [h1, h0] = height.to_be_bytes();
    j.extend_from_slice(&[
        0xff,
        0xc0,
        0,
        8 + 3 * components,
        8,
        h1,
        h0,
        w1,
        w0,
        components,
    ]);
    for c in 0..components {
        j.extend_from_slice(&[c + 1, 0x11, 0]);
    }
    j.extend_from_slice(&[0xff, 0xda, 0, 2]);
    j
}

#[test]
fn jpegs_pass_through_unless_leptonica_would_misread_them() {
    let (gray, cmyk, cmyk_decode, big) = ((10, 0), (11, 0), (12, 0), (13, 0));
    let dct = || ("Filter", name("DCTDecode"));
    let inverted = Object::Array([1, 0, 1, 0, 1, 0, 1, 0].map(Object::Integer).to_vec());
    let objects = vec![
        (gray, image(8, 8, vec![dct()], jpeg_header(8, 8, 1, false))),
        (cmyk, image(8, 8, vec![dct()], jpeg_header(8, 8, 4, true))),
        (
            cmyk_decode,
            image(
                8,
                8,
                vec![dct(), ("Decode", inverted)],
                jpeg_header(8, 8, 4, true),
            ),
        ),
    ];
    let res = xobjects(&[("G", gray), ("C", cmyk), ("D", cmyk_decode)]);
    let (doc, page) = doc_with(objects, res, b"/G Do /C Do /D Do");
    let (images, bad) = page_images(&doc, page, 1000).unwrap();
    assert_eq!((images.len(), bad), (2, 1));
    assert!(images.iter().all(|i| i.format == "jpeg" && i.width == 8));

    // The JPEG's own size counts, not the one the PDF claims.
    let objects = vec![(
        big,
        image(8, 8, vec![dct()], jpeg_header(60000, 60000, 1, false)),
    )];
    let (doc, page) = doc_with(objects, xobjects(&[("B", big)]), b"/B Do");
    assert!(
        page_images(&doc, page, 1000)
            .unwrap_err()
            .contains("60000x60000")
    );
}
