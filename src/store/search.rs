//! Search, engine-neutral: what a person types, parsed into a [`Query`] that
//! never fails to parse, and what a search returns. Each engine turns a
//! [`Query`] into its own syntax (SQLite: an FTS5 expression).
//!
//! The default syntax: plain words must all match, `"quoted phrases"` match as
//! phrases, `word*` matches a prefix, and everything else (hyphens, colons,
//! apostrophes, stray quotes, `AND`/`NOT`) is searched as words.

use serde::Serialize;

use super::DocumentStatus;

/// One search hit: a page of a document.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: i64,
    pub name: String,
    pub page: i64,
    /// The matched passage, matched words between `\x02` and `\x03`.
    pub snippet: String,
    /// Relevance (BM25 on SQLite); higher is better.
    pub score: f64,
    pub created_at: i64,
}

/// Filters for [`super::Store::search`].
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Documents created at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Documents created before this time (Unix ms).
    pub until_ms: Option<i64>,
    pub status: Option<DocumentStatus>,
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Terms that must all match.
    All(Vec<Term>),
    /// The engine's own query syntax, passed through (`quire search --raw`);
    /// may fail to parse in the engine.
    Raw(String),
}

/// One term of a [`Query::All`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A word (the engine's tokenizer may split it further at punctuation);
    /// `prefix` matches every word that starts with it.
    Word { text: String, prefix: bool },
    /// Words that must appear together, in this order.
    Phrase(String),
}

impl Query {
    /// Parses what a person typed; `None` when it has nothing to search.
    pub fn parse(text: &str) -> Option<Query> {
        let mut terms = vec![];
        let mut rest = text;
        while let Some(start) = rest.find('"') {
            words(&rest[..start], &mut terms);
            let after = &rest[start + 1..];
            match after.find('"') {
                Some(end) => {
                    let phrase = &after[..end];
                    if phrase.chars().any(char::is_alphanumeric) {
                        terms.push(Term::Phrase(phrase.to_owned()));
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
        (!terms.is_empty()).then_some(Query::All(terms))
    }
}

/// Appends each whitespace-separated word of `text` that has a letter or digit,
/// keeping a trailing `*` as a prefix search.
fn words(text: &str, terms: &mut Vec<Term>) {
    for w in text.split_whitespace() {
        let (base, prefix) = match w.strip_suffix('*') {
            Some(b) => (b.trim_end_matches('*'), true),
            None => (w, false),
        };
        if base.chars().any(char::is_alphanumeric) {
            terms.push(Term::Word {
                text: base.to_owned(),
                prefix,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str) -> Term {
        Term::Word {
            text: text.into(),
            prefix: false,
        }
    }

    #[test]
    fn parses_words_phrases_and_prefixes() {
        assert_eq!(
            Query::parse("\"exact phrase\" more pref*"),
            Some(Query::All(vec![
                Term::Phrase("exact phrase".into()),
                word("more"),
                Term::Word {
                    text: "pref".into(),
                    prefix: true
                },
            ]))
        );
    }

    #[test]
    fn operators_and_stray_quotes_are_words() {
        assert_eq!(
            Query::parse("AND NOT unbalanced \"quote"),
            Some(Query::All(vec![
                word("AND"),
                word("NOT"),
                word("unbalanced"),
                word("quote")
            ]))
        );
        assert_eq!(Query::parse("*** \"\" - :"), None);
    }
}
