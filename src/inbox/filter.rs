//! Which names in the inbox are left alone: hidden files and folders, and the
//! configured patterns (partial downloads, lock files, OS litter).

use std::path::Path;

/// The ignore rules.
#[derive(Debug, Clone)]
pub struct Filter {
    patterns: Vec<String>,
}

impl Filter {
    /// Rules from the `watch.ignore` patterns.
    pub fn new(patterns: &[String]) -> Filter {
        Filter {
            patterns: patterns.iter().map(|p| p.to_lowercase()).collect(),
        }
    }

    /// True when `rel` (a path relative to the inbox) is to be left alone:
    /// any component hidden, or the file name matching a pattern (case-insensitive).
    pub fn ignores(&self, rel: &Path) -> bool {
        let hidden = rel
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        hidden
            || self
                .patterns
                .iter()
                .any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

/// Matches `*` (any run) and `?` (any one byte) against the whole name.
fn glob(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WatchConfig;

    #[test]
    fn default_patterns_ignore_partial_and_lock_files() {
        let f = Filter::new(&WatchConfig::default().ignore);
        for name in [
            "scan.pdf.part",
            "x.crdownload",
            "a.TMP",
            "~$report.docx",
            "Thumbs.db",
            ".DS_Store",
            ".hidden.pdf",
            "sub/.git/x.pdf",
        ] {
            assert!(f.ignores(Path::new(name)), "{name}");
        }
        for name in [
            "scan.pdf",
            "part.pdf",
            "my tmp file.png",
            "sub/dir/ünïcødé.tiff",
            "-leading-dash.pdf",
        ] {
            assert!(!f.ignores(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn glob_matches_whole_names() {
        assert!(glob(b"*.part", b"a.part"));
        assert!(!glob(b"*.part", b"a.partial"));
        assert!(glob(b"a?c", b"abc"));
        assert!(glob(b"*a*b*", b"xxaxxbxx"));
        assert!(!glob(b"*a*b", b"xxaxxbxx"));
    }
}
