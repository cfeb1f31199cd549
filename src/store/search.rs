//! Search, engine-neutral: what a person types, parsed into a [`Query`] that
//! never fails to parse, and what a search returns. Each engine turns a
//! [`Query`] into its own syntax (SQLite: an FTS5 expression).
//!
//! The default syntax ([`Query::parse`]): plain words must all match,
//! `"quoted phrases"` match as phrases, `word*` matches a prefix, `a OR b`
//! either, `-word` and `NOT word` exclude; everything else (hyphens inside
//! words, colons, apostrophes, stray quotes, operators with nothing to act
//! on) is searched as words.

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
    /// The original file (absolute once [`super::Store`] returns it).
    pub path: std::path::PathBuf,
}

/// A document that matches: its best page, and how many pages match.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentHit {
    pub best: Hit,
    pub matching_pages: i64,
    /// Its other matching pages (the first ten), in page order.
    pub other_pages: Vec<i64>,
}

/// A search ranks at most this many pages, on every engine: ranking costs a
/// computation per matching page, and a word on most of 100,000 pages took
/// 200-240 ms (p99) to rank in full on SQLite. A query matching more ranks
/// the newest this many matching pages (the newest documents) and says so
/// ([`Found::at_least`]); counts of pages stay exact. Rare words (the
/// needles people search for) match far fewer pages and are ranked in full.
pub(crate) const RANK_AT_MOST: i64 = 10_000;

/// The first hits of a search, and how many there are in all.
#[derive(Debug, Clone)]
pub struct Found<T> {
    pub hits: Vec<T>,
    pub total: usize,
    /// True when only part of the matches was ranked (the newest, for a
    /// query matching a great many pages; an engine's choice): a bigger
    /// limit would not show the rest, and a count of documents is a lower
    /// bound (a count of pages stays exact).
    pub at_least: bool,
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
    /// Pages that match every one of `all` (each a set of alternatives, one
    /// of which must match) and none of `none`.
    Match {
        all: Vec<Vec<Term>>,
        none: Vec<Term>,
    },
    /// The engine's own query syntax, passed through (`quire search --raw`);
    /// may fail to parse in the engine.
    Raw(String),
}

/// One term of a [`Query::Match`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A word (the engine's tokenizer may split it further at punctuation);
    /// `prefix` matches every word that starts with it.
    Word { text: String, prefix: bool },
    /// Words that must appear together, in this order.
    Phrase(String),
}

/// A piece of what was typed.
#[derive(Debug)]
enum Token {
    Term(Term, bool),
    Or,
    And,
    Not,
}

impl Query {
    /// Parses what a person typed (see `QUERY SYNTAX` in `man quire-search`):
    ///
    /// - words must all appear on the page; `"a phrase"` in this order;
    ///   `pay*` is any word starting with `pay`;
    /// - `a OR b` matches either (binding the two terms beside it: `tax 2023
    ///   OR 2024` is tax and one of the years);
    /// - `-word`, `-"a phrase"` and `NOT word` exclude pages that have it;
    /// - `AND` may be written, and changes nothing;
    /// - anything else (hyphens inside words, colons, stray quotes, an
    ///   operator with nothing to act on) is searched as words.
    ///
    /// `None` when nothing is left to look for (no words, or only
    /// exclusions).
    pub fn parse(text: &str) -> Option<Query> {
        let mut all: Vec<Vec<Term>> = vec![];
        let mut none = vec![];
        let (mut or, mut not) = (false, false);
        let word = |w: &str| Term::Word {
            text: w.into(),
            prefix: false,
        };
        let tokens = tokens(text);
        for (i, token) in tokens.iter().enumerate() {
            let next_is_term = matches!(tokens.get(i + 1), Some(Token::Term(..)));
            let next_is_not = matches!(tokens.get(i + 1), Some(Token::Not));
            match token {
                // An operator acts when it has what it needs on each side.
                Token::Or if !all.is_empty() && !or && !not && (next_is_term || next_is_not) => {
                    or = true
                }
                Token::And if !all.is_empty() && !or && !not && (next_is_term || next_is_not) => {}
                Token::Not if !not && next_is_term => not = true,
                // Else it is the word itself.
                Token::Or => all.push(vec![word("OR")]),
                Token::And => all.push(vec![word("AND")]),
                Token::Not => all.push(vec![word("NOT")]),
                Token::Term(term, negated) => {
                    if *negated || not {
                        none.push(term.clone());
                    } else if or {
                        all.last_mut()
                            .expect("OR follows a term")
                            .push(term.clone());
                    } else {
                        all.push(vec![term.clone()]);
                    }
                    (or, not) = (false, false);
                }
            }
        }
        (!all.is_empty()).then_some(Query::Match { all, none })
    }
}

/// Splits what was typed into terms and operators: quoted phrases (an
/// unbalanced quote is dropped), words (a trailing `*` makes a prefix), a
/// leading `-` negates a term; `OR`, `AND`, `NOT` in capitals are operators.
/// Terms with no letter or digit are dropped.
fn tokens(text: &str) -> Vec<Token> {
    let mut out = vec![];
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let negated = rest.len() > 1
            && rest.starts_with('-')
            && rest[1..].starts_with(|c: char| c == '"' || c.is_alphanumeric());
        if negated {
            rest = &rest[1..];
        }
        if let Some(after) = rest.strip_prefix('"') {
            match after.find('"') {
                Some(end) => {
                    let phrase = &after[..end];
                    if phrase.chars().any(char::is_alphanumeric) {
                        out.push(Token::Term(Term::Phrase(phrase.to_owned()), negated));
                    }
                    rest = after[end + 1..].trim_start();
                }
                // An unbalanced quote: the rest is plain words.
                None => rest = after.trim_start(),
            }
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"')
            .unwrap_or(rest.len());
        let w = &rest[..end];
        rest = rest[end..].trim_start();
        match w {
            "OR" if !negated => out.push(Token::Or),
            "AND" if !negated => out.push(Token::And),
            "NOT" if !negated => out.push(Token::Not),
            w => {
                let (base, prefix) = match w.strip_suffix('*') {
                    Some(b) => (b.trim_end_matches('*'), true),
                    None => (w, false),
                };
                if base.chars().any(char::is_alphanumeric) {
                    let text = base.to_owned();
                    out.push(Token::Term(Term::Word { text, prefix }, negated));
                }
            }
        }
    }
    out
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

    fn all(terms: &[&[Term]], none: &[Term]) -> Option<Query> {
        Some(Query::Match {
            all: terms.iter().map(|t| t.to_vec()).collect(),
            none: none.to_vec(),
        })
    }

    #[test]
    fn parses_words_phrases_and_prefixes() {
        let pref = Term::Word {
            text: "pref".into(),
            prefix: true,
        };
        assert_eq!(
            Query::parse("\"exact phrase\" more pref*"),
            all(
                &[
                    &[Term::Phrase("exact phrase".into())],
                    &[word("more")],
                    &[pref]
                ],
                &[]
            )
        );
    }

    #[test]
    fn or_binds_the_terms_beside_it_and_minus_or_not_excludes() {
        assert_eq!(
            Query::parse("invoice OR zebrafish"),
            all(&[&[word("invoice"), word("zebrafish")]], &[])
        );
        assert_eq!(
            Query::parse("tax 2023 OR 2024 OR 2025"),
            all(
                &[&[word("tax")], &[word("2023"), word("2024"), word("2025")]],
                &[]
            )
        );
        assert_eq!(
            Query::parse("invoice -zebrafish NOT \"red herring\" AND paid"),
            all(
                &[&[word("invoice")], &[word("paid")]],
                &[word("zebrafish"), Term::Phrase("red herring".into())]
            )
        );
        // Hyphens inside words and lower-case operators are words.
        assert_eq!(
            Query::parse("e-mail or not"),
            all(&[&[word("e-mail")], &[word("or")], &[word("not")]], &[])
        );
    }

    #[test]
    fn operators_with_nothing_to_act_on_are_words() {
        assert_eq!(
            Query::parse("OR invoice"),
            all(&[&[word("OR")], &[word("invoice")]], &[])
        );
        assert_eq!(
            Query::parse("invoice OR"),
            all(&[&[word("invoice")], &[word("OR")]], &[])
        );
        assert_eq!(
            Query::parse("invoice NOT"),
            all(&[&[word("invoice")], &[word("NOT")]], &[])
        );
        // "a OR NOT b" cannot be searched as such: it excludes b.
        assert_eq!(
            Query::parse("a OR NOT b"),
            all(&[&[word("a")]], &[word("b")])
        );
        // Only exclusions, or nothing searchable: nothing to look for.
        assert_eq!(Query::parse("-zebrafish"), None);
        assert_eq!(Query::parse("*** \"\" - :"), None);
        assert_eq!(
            Query::parse("unbalanced \"quote"),
            all(&[&[word("unbalanced")], &[word("quote")]], &[])
        );
    }
}
