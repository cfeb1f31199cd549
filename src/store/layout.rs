//! Where the words of an OCR'd page are: the lines and word boxes tesseract
//! found, kept with the page so that the searchable PDF can lay an invisible
//! text layer over the page image word by word (and a viewer can highlight a
//! hit on the page).
//!
//! Boxes are in pixels of the image tesseract read, which may be the page
//! straightened and turned upright; [`Layout::to_page`] maps them back onto
//! the page as a reader sees it: `(0, 0)` its top left corner, `(1, 1)` its
//! bottom right (a PDF page after its `/Rotate`, an image file as stored).

use serde::{Deserialize, Serialize};

/// A 2-D affine map, in PDF's order: `(x, y)` goes to
/// `(a x + c y + e, b x + d y + f)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "[f64; 6]", into = "[f64; 6]")]
pub struct Affine {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
    pub e: f64,
    pub f: f64,
}

impl Affine {
    pub const IDENTITY: Affine = Affine::new([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    pub const fn new([a, b, c, d, e, f]: [f64; 6]) -> Affine {
        Affine { a, b, c, d, e, f }
    }

    pub fn scale(sx: f64, sy: f64) -> Affine {
        Affine::new([sx, 0.0, 0.0, sy, 0.0, 0.0])
    }

    pub fn translate(x: f64, y: f64) -> Affine {
        Affine::new([1.0, 0.0, 0.0, 1.0, x, y])
    }

    /// Rotation by `degrees` about the origin, from the x axis towards the y axis
    /// (clockwise on an image, whose y axis points down).
    pub fn rotate(degrees: f64) -> Affine {
        let (sin, cos) = degrees.to_radians().sin_cos();
        Affine::new([cos, sin, -sin, cos, 0.0, 0.0])
    }

    /// Where `(x, y)` goes.
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.a * x + self.c * y + self.e,
            self.b * x + self.d * y + self.f,
        )
    }

    /// `self`, then `next`.
    pub fn then(&self, next: &Affine) -> Affine {
        let (e, f) = next.apply(self.e, self.f);
        Affine {
            a: next.a * self.a + next.c * self.b,
            b: next.b * self.a + next.d * self.b,
            c: next.a * self.c + next.c * self.d,
            d: next.b * self.c + next.d * self.d,
            e,
            f,
        }
    }
}

impl From<[f64; 6]> for Affine {
    fn from(m: [f64; 6]) -> Affine {
        Affine::new(m)
    }
}

impl From<Affine> for [f64; 6] {
    fn from(m: Affine) -> [f64; 6] {
        [m.a, m.b, m.c, m.d, m.e, m.f]
    }
}

/// A box in pixels of the image read: left, top, right, bottom.
pub type PixelBox = [i32; 4];

/// One OCR'd page's lines of words.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// From the pixels of the image read to the page, as a fraction of its
    /// width and height (y down).
    pub to_page: Affine,
    pub lines: Vec<Line>,
}

impl Default for Affine {
    fn default() -> Affine {
        Affine::IDENTITY
    }
}

/// A line of text, in reading order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    #[serde(rename = "box")]
    pub bbox: PixelBox,
    pub words: Vec<Word>,
}

/// A word and its box (stored as `[left, top, right, bottom, text]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    from = "(i32, i32, i32, i32, String)",
    into = "(i32, i32, i32, i32, String)"
)]
pub struct Word {
    pub bbox: PixelBox,
    pub text: String,
}

impl From<(i32, i32, i32, i32, String)> for Word {
    fn from((l, t, r, b, text): (i32, i32, i32, i32, String)) -> Word {
        Word {
            bbox: [l, t, r, b],
            text,
        }
    }
}

impl From<Word> for (i32, i32, i32, i32, String) {
    fn from(w: Word) -> Self {
        let [l, t, r, b] = w.bbox;
        (l, t, r, b, w.text)
    }
}

impl Layout {
    /// The layout in tesseract's TSV output (`tesseract IMAGE - tsv`): level
    /// 4 rows are lines, level 5 rows their words. Rows it cannot parse are
    /// skipped; `to_page` is left for the caller to set.
    pub fn from_tsv(tsv: &str) -> Layout {
        let mut lines: Vec<Line> = vec![];
        for row in tsv.lines() {
            let cols: Vec<&str> = row.splitn(12, '\t').collect();
            let [level, _, _, _, _, _, l, t, w, h, _, text] = cols[..] else {
                continue;
            };
            let num = |s: &str| s.trim().parse::<i32>().ok();
            let (Some(level), Some(l), Some(t), Some(w), Some(h)) =
                (num(level), num(l), num(t), num(w), num(h))
            else {
                continue; // the header row
            };
            let bbox = [l, t, l + w, t + h];
            match level {
                4 => lines.push(Line {
                    bbox,
                    words: vec![],
                }),
                5 if !text.trim().is_empty() => {
                    if let Some(line) = lines.last_mut() {
                        line.words.push(Word {
                            bbox,
                            text: text.trim().to_string(),
                        });
                    }
                }
                _ => {}
            }
        }
        lines.retain(|l| !l.words.is_empty());
        Layout {
            to_page: Affine::IDENTITY,
            lines,
        }
    }

    /// True when most of the text runs in vertical lines (by length): a
    /// page of horizontal print read sideways.
    pub fn mostly_vertical(&self) -> bool {
        let (mut across, mut down) = (0i64, 0i64);
        for line in &self.lines {
            let [l, t, r, b] = line.bbox;
            let (w, h) = (i64::from(r - l), i64::from(b - t));
            if h > 2 * w {
                down += h;
            } else if w > 2 * h {
                across += w;
            }
        }
        down > across
    }

    /// The median height of the lines, in pixels; `None` without lines.
    pub fn median_line_height(&self) -> Option<i32> {
        let mut heights: Vec<i32> = self.lines.iter().map(|l| l.bbox[3] - l.bbox[1]).collect();
        heights.sort_unstable();
        heights.get(heights.len() / 2).copied()
    }

    /// Number of words.
    pub fn words(&self) -> usize {
        self.lines.iter().map(|l| l.words.len()).sum()
    }

    /// The box of the first word equal to `word` (ignoring case and the
    /// punctuation around it), as a fraction of the page: the smallest
    /// upright rectangle holding it, `[left, top, right, bottom]`.
    pub fn find(&self, word: &str) -> Option<[f64; 4]> {
        let trim = |s: &str| {
            s.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        };
        let wanted = trim(word);
        let w = self
            .lines
            .iter()
            .flat_map(|l| &l.words)
            .find(|w| trim(&w.text) == wanted)?;
        Some(self.page_box(w.bbox))
    }

    /// `bbox` mapped onto the page: the smallest upright rectangle holding
    /// its four corners, as fractions `[left, top, right, bottom]`.
    pub fn page_box(&self, [l, t, r, b]: PixelBox) -> [f64; 4] {
        let corners = [(l, t), (r, t), (l, b), (r, b)]
            .map(|(x, y)| self.to_page.apply(f64::from(x), f64::from(y)));
        let xs = corners.map(|c| c.0);
        let ys = corners.map(|c| c.1);
        let min = |v: [f64; 4]| v.into_iter().fold(f64::INFINITY, f64::min);
        let max = |v: [f64; 4]| v.into_iter().fold(f64::NEG_INFINITY, f64::max);
        [min(xs), min(ys), max(xs), max(ys)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9
    }

    #[test]
    fn affine_composes_in_order() {
        let m = Affine::translate(1.0, 0.0).then(&Affine::rotate(90.0));
        // (0,0) -> (1,0) -> rotated a quarter towards y: (0,1).
        assert!(close(m.apply(0.0, 0.0), (0.0, 1.0)));
        let m = Affine::rotate(90.0).then(&Affine::translate(1.0, 0.0));
        assert!(close(m.apply(0.0, 0.0), (1.0, 0.0)));
        assert!(close(
            Affine::scale(2.0, 3.0)
                .then(&Affine::IDENTITY)
                .apply(1.0, 1.0),
            (2.0, 3.0)
        ));
    }

    #[test]
    fn tsv_gives_lines_of_words() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t\n\
                   4\t1\t1\t1\t1\t0\t10\t20\t80\t12\t-1\t\n\
                   5\t1\t1\t1\t1\t1\t10\t20\t30\t12\t96.5\tHello\n\
                   5\t1\t1\t1\t1\t2\t50\t21\t40\t11\t95.1\tworld.\n\
                   4\t1\t1\t1\t2\t0\t10\t40\t80\t12\t-1\t\n\
                   5\t1\t1\t1\t2\t1\t10\t40\t30\t12\t-1\t \n";
        let layout = Layout::from_tsv(tsv);
        assert_eq!(
            layout.lines.len(),
            1,
            "the line with only a blank word is dropped"
        );
        assert_eq!(layout.lines[0].bbox, [10, 20, 90, 32]);
        assert_eq!(layout.words(), 2);
        assert_eq!(layout.lines[0].words[1].text, "world.");
        assert_eq!(layout.find("WORLD"), Some([50.0, 21.0, 90.0, 32.0]));
        let json = serde_json::to_string(&layout).unwrap();
        assert!(json.contains("[10,20,40,32,\"Hello\"]"), "{json}");
        assert_eq!(serde_json::from_str::<Layout>(&json).unwrap(), layout);
    }
}
