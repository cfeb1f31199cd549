//! Drawing pages of known text with ImageMagick, for OCR tests and the OCR
//! benchmark (which includes this file with `#[path]`).

#![allow(dead_code)] // each includer uses a part

use std::path::Path;
use std::process::Command;

/// Writes a 300-DPI PNG of `size` pixels, white, with `lines` in 11pt DejaVu
/// Sans: the first line's baseline at `origin`, each next `spacing` below.
pub fn text_page(path: &Path, size: (u32, u32), origin: (u32, u32), spacing: u32, lines: &[&str]) {
    text_blocks(path, size, spacing, &[(origin, lines)]);
}

/// [`text_page`] with several blocks of lines, each from its own origin
/// (columns, say).
pub fn text_blocks(path: &Path, size: (u32, u32), spacing: u32, blocks: &[((u32, u32), &[&str])]) {
    text_blocks_sized(path, size, spacing, 11, blocks);
}

/// [`text_blocks`] in `points`-point type.
pub fn text_blocks_sized(
    path: &Path,
    size: (u32, u32),
    spacing: u32,
    points: u32,
    blocks: &[((u32, u32), &[&str])],
) {
    let mut c = Command::new("convert");
    c.args(["-units", "PixelsPerInch", "-density", "300", "-size"])
        .arg(format!("{}x{}", size.0, size.1))
        .arg("xc:white");
    c.args(["-font", "DejaVu-Sans", "-fill", "black", "-pointsize"])
        .arg(points.to_string());
    for (origin, lines) in blocks {
        for (i, l) in lines.iter().enumerate() {
            let y = origin.1 + spacing * i as u32;
            c.arg("-annotate").arg(format!("+{}+{y}", origin.0)).arg(l);
        }
    }
    c.arg(path);
    let out = c
        .output()
        .expect("ImageMagick's convert is installed (scripts/setup.sh --test)");
    assert!(
        out.status.success(),
        "convert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
