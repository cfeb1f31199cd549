//! The scan set: imperfect scans of known text, as they come from real
//! feeders, phones and PDF tools (issue #12's list). Each variant is one file
//! with its truth and a word found nowhere else in the set (its needle). The
//! tests hold quire to a CER per variant; `cargo bench --bench scans` reads
//! the same set with quire and with OCRmyPDF. Both include this file (the
//! bench with `#[path]`), next to `draw.rs` and `pdf.rs`.

#![allow(dead_code)] // each includer uses a part

use std::path::{Path, PathBuf};
use std::process::Command;

use super::draw::text_blocks_sized;
use super::pdf::{PdfPage, Scan, write_pdf};

/// Sentences the pages are made of; each variant takes its own run.
const PROSE: &[&str] = &[
    "The committee met on Tuesday to review the harbour accounts,",
    "which showed a small surplus after the winter storms had passed.",
    "Repairs to the north quay were finished two weeks ahead of time,",
    "and the new crane lifted its first cargo of timber in March.",
    "Fishing licences rose by eleven percent over the previous year,",
    "while ferry passengers fell slightly because of the long strike.",
    "The treasurer proposed moving the reserve fund to a safer bank;",
    "after some debate the motion was carried by seven votes to two.",
    "Members thanked the harbour master for his careful records and",
    "asked that next year's report include the lighthouse expenses.",
    "The school inspector arrived by the morning train from Bristol",
    "and spent three days in the classrooms listening to lessons.",
    "Her report praised the reading of the youngest pupils, noting",
    "that the library had doubled its shelves since the last visit.",
    "Invoice 4711 for the roof tiles was paid on the fourth of June,",
    "together with the carpenter's bill for the vestry windows.",
    "A parcel of seed potatoes was delivered to the allotments and",
    "shared among the gardeners who had lost their crop to blight.",
    "The orchestra rehearsed in the town hall every Thursday evening,",
    "preparing a programme of marches, waltzes and a short overture.",
];

/// Words that appear in no sentence: one per variant, to search for.
const NEEDLES: &[&str] = &[
    "marmalade",
    "quicksilver",
    "buttercup",
    "hazelnut",
    "lavender",
    "porcupine",
    "saxophone",
    "tangerine",
    "wheelbarrow",
    "zeppelin",
    "blacksmith",
    "cormorant",
    "dandelion",
    "flamingo",
    "gooseberry",
    "hedgehog",
    "juniper",
    "kingfisher",
    "lemonade",
    "mulberry",
];

/// One file of the set.
pub struct Sample {
    /// What kind of imperfection it has, e.g. `rotated-90`.
    pub variant: String,
    pub path: PathBuf,
    /// Its text in reading order.
    pub truth: String,
    /// A word only this file contains.
    pub needle: &'static str,
}

/// The lines of sample `i`: eight sentences from the prose, then one with its needle.
fn lines(i: usize) -> Vec<String> {
    let mut lines: Vec<String> = (0..8)
        .map(|k| PROSE[(i * 3 + k) % PROSE.len()].to_string())
        .collect();
    lines.push(format!("The word to find on this page is {}.", NEEDLES[i]));
    lines
}

/// The whole set in `dir`: one file per variant.
pub fn scan_set(dir: &Path) -> Vec<Sample> {
    VARIANTS
        .iter()
        .enumerate()
        .map(|(i, name)| sample(dir, i, name))
        .collect()
}

/// Every variant's name, in the set's order.
pub const VARIANTS: &[&str] = &[
    "clean",
    "dpi-150",
    "dpi-100",
    "jpeg-q30",
    "low-contrast",
    "small-print",
    "skew-1.8",
    "skew-minus-3.7",
    "rotated-90",
    "rotated-180",
    "rotated-270",
    "noise-blur",
    "two-columns",
    "phone-photo",
    "scanned-pdf",
    "small-print-75dpi",
    "noise-heavy",
    "jpeg-q15",
    "scanned-pdf-6-pages",
];

/// Sample `i` of `variant` (a name from [`VARIANTS`]) in `dir`.
pub fn sample(dir: &Path, i: usize, variant: &str) -> Sample {
    let lines = lines(i);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let base = dir.join(format!("{i:02}-{variant}-base.png"));
    let out = |ext: &str| dir.join(format!("{i:02}-{variant}.{ext}"));
    let height = 260 + 90 * refs.len() as u32;
    let page = |pt: u32| {
        text_blocks_sized(
            &base,
            (2550, height),
            90 * pt / 11,
            pt,
            &[((150, 200), &refs)],
        )
    };
    let mut truth = lines.join(" ");
    let path = match variant {
        "two-columns" => {
            let (left, right) = refs.split_at(refs.len() / 2 + 1);
            let halves = |l: &[&str]| -> Vec<String> {
                l.iter()
                    .flat_map(|s| {
                        let mid = s[..s.len() / 2].rfind(' ').unwrap();
                        [s[..mid].to_string(), s[mid + 1..].to_string()]
                    })
                    .collect()
            };
            let (l, r) = (halves(left), halves(right));
            let l: Vec<&str> = l.iter().map(String::as_str).collect();
            let r: Vec<&str> = r.iter().map(String::as_str).collect();
            text_blocks_sized(
                &base,
                (2550, 1900),
                90,
                11,
                &[((150, 200), &l), ((1340, 200), &r)],
            );
            truth = format!("{} {}", l.join(" "), r.join(" "));
            convert(&base, &[], &out("png"))
        }
        "small-print" => {
            page(7);
            convert(&base, &[], &out("png"))
        }
        "small-print-75dpi" => {
            page(8);
            convert(&base, &["-resample", "75"], &out("png"))
        }
        "scanned-pdf" | "scanned-pdf-6-pages" => {
            let pages = if variant == "scanned-pdf" { 1 } else { 6 };
            let mut scans = vec![];
            let mut texts = vec![];
            for p in 0..pages {
                // Each page its own run of the prose; the needle on the last.
                let page_lines: Vec<String> = if p + 1 < pages {
                    (0..9)
                        .map(|k| PROSE[(i + 7 * p + k) % PROSE.len()].to_string())
                        .collect()
                } else {
                    lines.clone()
                };
                let refs: Vec<&str> = page_lines.iter().map(String::as_str).collect();
                text_blocks_sized(&base, (2550, height), 90, 11, &[((150, 200), &refs)]);
                let jpeg = convert(
                    &base,
                    &["-colorspace", "Gray", "-quality", "85"],
                    &out("jpg"),
                );
                let (w, h) = size(&jpeg);
                scans.push(PdfPage::Scan(Scan {
                    width: w,
                    height: h,
                    filter: "/DCTDecode",
                    data: std::fs::read(&jpeg).unwrap(),
                }));
                std::fs::remove_file(&jpeg).unwrap();
                texts.push(page_lines.join(" "));
            }
            truth = texts.join(" ");
            let pdf = out("pdf");
            write_pdf(&pdf, &scans);
            pdf
        }
        v => {
            page(11);
            // The page at 55%: 1402 pixels wide.
            let (w, h) = (1402, height * 55 / 100);
            let photo_corners = format!(
                "0,0 40,30 {w},0 {},0 0,{h} 10,{} {w},{h} {},{}",
                w - 35,
                h - 10,
                w - 15,
                h + 10
            );
            let photo_light = format!("0,0 gray(100%) {w},{h} gray(50%)");
            let args: Vec<&str> = match v {
                "clean" => vec![],
                "dpi-150" => vec!["-resample", "150"],
                "dpi-100" => vec!["-resample", "100"],
                "jpeg-q30" => vec!["-resample", "200", "-quality", "30"],
                "low-contrast" => vec!["+level", "45%,80%"],
                "skew-1.8" => vec!["-background", "white", "-rotate", "1.8", "+repage"],
                "skew-minus-3.7" => vec!["-background", "white", "-rotate", "-3.7", "+repage"],
                "rotated-90" => vec!["-rotate", "90"],
                "rotated-180" => vec!["-rotate", "180"],
                "rotated-270" => vec!["-rotate", "270"],
                // Seeded: the same noise every run.
                "noise-blur" => vec![
                    "-seed",
                    "1",
                    "-attenuate",
                    "1.0",
                    "+noise",
                    "Impulse",
                    "-blur",
                    "0x1.2",
                ],
                "noise-heavy" => vec![
                    "-seed",
                    "2",
                    "-attenuate",
                    "1.5",
                    "+noise",
                    "Impulse",
                    "-blur",
                    "0x1.2",
                ],
                "jpeg-q15" => vec!["-resample", "150", "-quality", "15"],
                // Held a little askew and close, lit from one side, saved
                // by a phone: no resolution recorded.
                "phone-photo" => vec![
                    "-resize",
                    "55%",
                    "-virtual-pixel",
                    "white",
                    "-distort",
                    "Perspective",
                    &photo_corners,
                    "(",
                    "+clone",
                    "-sparse-color",
                    "Barycentric",
                    &photo_light,
                    ")",
                    "-compose",
                    "Multiply",
                    "-composite",
                    "-blur",
                    "0x0.8",
                    "-strip",
                    "-quality",
                    "70",
                ],
                other => panic!("no variant {other}"),
            };
            let ext = if matches!(v, "jpeg-q30" | "jpeg-q15" | "phone-photo") {
                "jpg"
            } else {
                "png"
            };
            let path = convert(&base, &args, &out(ext));
            if v == "phone-photo" {
                strip_density(&path);
            }
            path
        }
    };
    std::fs::remove_file(&base).ok();
    Sample {
        variant: variant.to_string(),
        path,
        truth,
        needle: NEEDLES[i],
    }
}

/// `convert SRC ARGS OUT`, keeping the source's resolution unless `args` change it.
fn convert(src: &Path, args: &[&str], out: &Path) -> PathBuf {
    let status = Command::new("convert")
        .arg(src)
        .args(["-units", "PixelsPerInch"])
        .args(args)
        .arg(out)
        .status()
        .expect("ImageMagick's convert is installed (scripts/setup.sh --test)");
    assert!(status.success(), "convert {args:?} failed");
    out.to_path_buf()
}

/// Width and height of an image in pixels.
fn size(path: &Path) -> (u32, u32) {
    let out = Command::new("identify")
        .args(["-format", "%w %h"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (w, h) = text.trim().split_once(' ').unwrap();
    (w.parse().unwrap(), h.parse().unwrap())
}

/// Clears a JPEG's recorded resolution (JFIF density units 0, 1:1), as
/// phone cameras leave it.
fn strip_density(jpeg: &Path) {
    let mut data = std::fs::read(jpeg).unwrap();
    if data.get(6..11) == Some(b"JFIF\0") {
        data[13] = 0; // units: none (aspect ratio only)
        data[14..18].copy_from_slice(&[0, 1, 0, 1]);
    }
    std::fs::write(jpeg, data).unwrap();
}
