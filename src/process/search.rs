//! Turning what a person types into an FTS5 query that never fails to parse:
//! plain words must all match, `"quoted phrases"` match as phrases, `word*`
//! matches a prefix, and everything else (hyphens, colons, apostrophes, stray
//! quotes, `AND`/`NOT`) is searched as words.

/// The FTS5 expression for a user's query; `None` when it has nothing to search.
pub fn to_fts(query: &str) -> Option<String> {
    let mut terms = vec![];
    let mut rest = query;
    while let Some(start) = rest.find('"') {
        words(&rest[..start], &mut terms);
        let after = &rest[start + 1..];
        match after.find('"') {
            Some(end) => {
                let phrase = &after[..end];
                if phrase.chars().any(char::is_alphanumeric) {
                    terms.push(quote(phrase));
                }
                rest = &after[end + 1..];
            }
            None => {
                // An unbalanced quote: the rest is plain words.
                rest = after;
                break;
            }
        }
    }
    words(rest, &mut terms);
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

/// Appends each whitespace-separated word of `text` as a quoted FTS5 string
/// (the tokenizer splits it further at punctuation), keeping a trailing `*`.
fn words(text: &str, terms: &mut Vec<String>) {
    for w in text.split_whitespace() {
        let (base, prefix) = match w.strip_suffix('*') {
            Some(b) => (b.trim_end_matches('*'), true),
            None => (w, false),
        };
        if !base.chars().any(char::is_alphanumeric) {
            continue;
        }
        let q = quote(base);
        terms.push(if prefix { format!("{q}*") } else { q });
    }
}

/// An FTS5 string literal.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_safe_expressions() {
        assert_eq!(to_fts("hello world").unwrap(), "\"hello\" AND \"world\"");
        assert_eq!(
            to_fts("\"exact phrase\" more").unwrap(),
            "\"exact phrase\" AND \"more\""
        );
        assert_eq!(to_fts("pref*").unwrap(), "\"pref\"*");
        assert_eq!(
            to_fts("AND NOT OR").unwrap(),
            "\"AND\" AND \"NOT\" AND \"OR\""
        );
        assert_eq!(
            to_fts("unbalanced \"quote").unwrap(),
            "\"unbalanced\" AND \"quote\""
        );
        assert_eq!(
            to_fts("e-mail: don't").unwrap(),
            "\"e-mail:\" AND \"don't\""
        );
        assert_eq!(to_fts("*** \"\" - :"), None);
    }
}
