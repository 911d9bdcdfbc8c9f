//! Kubernetes label selectors: the text form (`a=b,c!=d,e in (f,g),h notin (i),j,!k`) parsed
//! once, and matched against an object's labels.
//!
//! This module owns the selector syntax of CoreDNS's `labels` and `namespace_labels` options.
//! CoreDNS parses them with apimachinery's `ParseToLabelSelector`, so this accepts what that
//! accepts: `=`/`==` (equals), `!=` (not equals: the label is missing or differs), `in`,
//! `notin` (missing or not in the set), a bare key (exists) and `!key` (does not exist),
//! requirements joined by `,` (all must hold), whitespace between tokens ignored. Like
//! `ParseToLabelSelector` it rejects the `<`/`>` operators, an empty value set and a trailing
//! comma; keys must be Kubernetes qualified names (`[prefix/]name`) and values label values.
//! The empty selector matches every object. What the selector is applied to is `view.rs`'s
//! business.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A parsed label selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// One `key op values` term of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Operator,
    /// One value for `=`/`!=`, one or more for `in`/`notin`, none for exists/does-not-exist.
    values: Vec<String>,
}

/// The selector operators `ParseToLabelSelector` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// Why a selector does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("label selector {selector:?}, at byte {at}: {what}")]
pub struct SelectorError {
    /// The selector as given.
    pub selector: String,
    /// Byte offset in `selector` where the problem was found.
    pub at: usize,
    /// What was expected or is wrong.
    pub what: String,
}

// === impl LabelSelector ===

impl LabelSelector {
    /// Parses the text form; see the module documentation for the syntax.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        Parser {
            text: selector,
            tokens: lex(selector),
            next: 0,
        }
        .selector()
    }

    /// Whether an object with `labels` is selected.
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.matches_with(|key| labels.and_then(|l| l.get(key)).map(String::as_str))
    }

    /// [`Self::matches`] for labels kept in another form: `label` gives a key's value.
    pub fn matches_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| {
            let value = label(&r.key);
            match r.op {
                Operator::Equals | Operator::In => {
                    value.is_some_and(|v| r.values.iter().any(|w| w == v))
                }
                Operator::NotEquals | Operator::NotIn => {
                    !value.is_some_and(|v| r.values.iter().any(|w| w == v))
                }
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
    }

    /// Whether the selector is empty (selects everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, SelectorError> {
        Self::parse(s)
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical text form (`a=b,c notin (d,e),!f`), which parses back to the same selector.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match r.op {
                Operator::Equals => write!(f, "{}={}", r.key, r.values[0])?,
                Operator::NotEquals => write!(f, "{}!={}", r.key, r.values[0])?,
                Operator::In => write!(f, "{} in ({})", r.key, r.values.join(","))?,
                Operator::NotIn => write!(f, "{} notin ({})", r.key, r.values.join(","))?,
                Operator::Exists => write!(f, "{}", r.key)?,
                Operator::DoesNotExist => write!(f, "!{}", r.key)?,
            }
        }
        Ok(())
    }
}

/// A token and the byte offset where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    /// A key, a value or the words `in`/`notin`: a run of anything but whitespace and
    /// `,()=!<>`.
    Word(&'a str),
    Comma,
    Open,
    Close,
    /// `=` or `==`.
    Equals,
    /// `!=`.
    NotEquals,
    Bang,
    /// `<` or `>`: lexed so that the error can name them.
    Compare(char),
    End,
}

fn lex(text: &str) -> Vec<(Token<'_>, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let token = match bytes[i] {
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b',' => Token::Comma,
            b'(' => Token::Open,
            b')' => Token::Close,
            b'=' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 1;
                }
                Token::Equals
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 1;
                Token::NotEquals
            }
            b'!' => Token::Bang,
            b @ (b'<' | b'>') => Token::Compare(b as char),
            _ => {
                while i < bytes.len()
                    && !bytes[i].is_ascii_whitespace()
                    && !b",()=!<>".contains(&bytes[i])
                {
                    i += 1;
                }
                out.push((Token::Word(&text[start..i]), start));
                continue;
            }
        };
        i += 1;
        out.push((token, start));
    }
    out.push((Token::End, text.len()));
    out
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(Token<'a>, usize)>,
    next: usize,
}

// === impl Parser ===

impl<'a> Parser<'a> {
    fn peek(&self) -> (Token<'a>, usize) {
        self.tokens[self.next]
    }

    fn bump(&mut self) -> (Token<'a>, usize) {
        let t = self.tokens[self.next];
        if t.0 != Token::End {
            self.next += 1;
        }
        t
    }

    fn error(&self, at: usize, what: impl Into<String>) -> SelectorError {
        SelectorError {
            selector: self.text.to_owned(),
            at,
            what: what.into(),
        }
    }

    fn selector(mut self) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if self.peek().0 == Token::End {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(self.requirement()?);
            match self.bump() {
                (Token::End, _) => return Ok(LabelSelector { requirements }),
                (Token::Comma, _) => {}
                (_, at) => return Err(self.error(at, "expected ',' or the end of the selector")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (token, at) = self.bump();
        if token == Token::Bang {
            let key = self.key()?;
            return Ok(Requirement {
                key,
                op: Operator::DoesNotExist,
                values: Vec::new(),
            });
        }
        let Token::Word(word) = token else {
            return Err(self.error(at, "expected a label key or '!'"));
        };
        let key = self.checked_key(word, at)?;
        let (op, at) = self.peek();
        let (op, values) = match op {
            Token::Comma | Token::End => (Operator::Exists, Vec::new()),
            Token::Equals | Token::NotEquals => {
                self.bump();
                let value = self.optional_value()?;
                let op = if op == Token::Equals {
                    Operator::Equals
                } else {
                    Operator::NotEquals
                };
                (op, vec![value])
            }
            Token::Word("in") => {
                self.bump();
                (Operator::In, self.set()?)
            }
            Token::Word("notin") => {
                self.bump();
                (Operator::NotIn, self.set()?)
            }
            Token::Compare(c) => {
                return Err(self.error(
                    at,
                    format!("'{c}' is not a valid label selector operator here (CoreDNS's ParseToLabelSelector rejects it)"),
                ));
            }
            _ => {
                return Err(self.error(
                    at,
                    "expected '=', '==', '!=', 'in', 'notin', ',' or the end after a key",
                ));
            }
        };
        Ok(Requirement { key, op, values })
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.bump() {
            (Token::Word(word), at) => self.checked_key(word, at),
            (_, at) => Err(self.error(at, "expected a label key")),
        }
    }

    fn checked_key(&self, word: &str, at: usize) -> Result<String, SelectorError> {
        check_key(word).map_err(|what| self.error(at, format!("invalid key {word:?}: {what}")))?;
        Ok(word.to_owned())
    }

    /// The value after `=`/`!=`; it may be empty (`a=` selects an empty value).
    fn optional_value(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            (Token::Word(word), at) => {
                self.bump();
                self.checked_value(word, at)
            }
            (Token::Comma | Token::End, _) => Ok(String::new()),
            (_, at) => Err(self.error(at, "expected a label value")),
        }
    }

    fn checked_value(&self, word: &str, at: usize) -> Result<String, SelectorError> {
        check_value(word)
            .map_err(|what| self.error(at, format!("invalid value {word:?}: {what}")))?;
        Ok(word.to_owned())
    }

    /// `( v1, v2, … )`, not empty.
    fn set(&mut self) -> Result<Vec<String>, SelectorError> {
        match self.bump() {
            (Token::Open, _) => {}
            (_, at) => return Err(self.error(at, "expected '(' after 'in' or 'notin'")),
        }
        let mut values = Vec::new();
        loop {
            match self.bump() {
                (Token::Word(word), at) => values.push(self.checked_value(word, at)?),
                (Token::Close, at) if values.is_empty() => {
                    return Err(self.error(at, "the value set of 'in'/'notin' cannot be empty"));
                }
                (_, at) => return Err(self.error(at, "expected a label value")),
            }
            match self.bump() {
                (Token::Comma, _) => {}
                (Token::Close, _) => return Ok(values),
                (_, at) => return Err(self.error(at, "expected ',' or ')' in a value set")),
            }
        }
    }
}

/// A Kubernetes qualified name: `[prefix/]name`, the prefix a DNS-1123 subdomain (≤ 253), the
/// name ≤ 63 characters of `[A-Za-z0-9-_.]` that start and end alphanumeric.
fn check_key(key: &str) -> Result<(), &'static str> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 {
                return Err("the prefix must be 1 to 253 characters");
            }
            if !prefix.split('.').all(crate::view::is_dns_label) {
                return Err("the prefix must be a lower-case DNS subdomain");
            }
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err("the name part must not be empty");
    }
    check_value(name)
}

/// A label value: empty, or ≤ 63 characters of `[A-Za-z0-9-_.]` starting and ending
/// alphanumeric.
fn check_value(value: &str) -> Result<(), &'static str> {
    let b = value.as_bytes();
    if b.is_empty() {
        return Ok(());
    }
    if b.len() > 63 {
        return Err("must be at most 63 characters");
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err("may contain only letters, digits, '-', '_' and '.'");
    }
    if !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_every_operator_and_prints_it_back() {
        let s = LabelSelector::parse(" a=b , c!=d,e in (f, g),h notin (i),j,!k,l==m,n=").unwrap();
        assert_eq!(s.to_string(), "a=b,c!=d,e in (f,g),h notin (i),j,!k,l=m,n=");
        assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
        let prefixed = LabelSelector::parse("app.kubernetes.io/name=web").unwrap();
        assert_eq!(prefixed.to_string(), "app.kubernetes.io/name=web");
    }

    #[test]
    fn matching_follows_kubernetes_semantics() {
        let s: LabelSelector = "a=b,c!=d,e in (f,g),h notin (i),j,!k".parse().unwrap();
        let good = labels(&[("a", "b"), ("e", "g"), ("j", "")]);
        assert!(s.matches(Some(&good)));
        // `!=` and `notin` also hold when the label is missing; here they are present and differ.
        let mut also = good.clone();
        also.insert("c".into(), "x".into());
        also.insert("h".into(), "y".into());
        assert!(s.matches(Some(&also)));
        for (key, value) in [("a", "x"), ("c", "d"), ("e", "z"), ("h", "i"), ("k", "")] {
            let mut bad = good.clone();
            bad.insert(key.into(), value.into());
            assert!(!s.matches(Some(&bad)), "{key}={value}");
        }
        let mut no_j = good;
        no_j.remove("j");
        assert!(!s.matches(Some(&no_j)));
        assert!(!s.matches(None));
        assert!(LabelSelector::default().matches(None));
        assert!(LabelSelector::parse("  ").unwrap().is_empty());
        assert!(LabelSelector::parse("a!=b").unwrap().matches(None));
    }

    #[test]
    fn rejects_bad_syntax_with_a_position() {
        let err = |s: &str| LabelSelector::parse(s).unwrap_err();
        let e = err("a=b,");
        assert_eq!(e.at, 4);
        assert!(e.what.contains("expected a label key"), "{e}");
        assert!(err("a in ()").what.contains("cannot be empty"));
        assert!(err("a in b").what.contains("expected '('"));
        assert!(err("a in (b").what.contains("expected ',' or ')'"));
        assert!(err("a > 1").what.contains("'>' is not a valid"));
        assert!(err("a b").what.contains("expected '='"));
        assert!(err("a=b c").what.contains("expected ',' or the end"));
        assert!(err("=b").what.contains("expected a label key"));
        assert!(err("!").what.contains("expected a label key"));
        assert!(err("-a=b").what.contains("invalid key"));
        assert!(err("a=-b").what.contains("invalid value"));
        assert!(err("Example.com/a=b").what.contains("prefix"));
        assert!(err(&format!("a={}", "v".repeat(64))).what.contains("63"));
        assert!(err("a=b,,c").what.contains("expected a label key"));
        let e = err("a=b,c in (d,)");
        assert_eq!(e.at, 12);
        assert!(
            e.to_string()
                .starts_with("label selector \"a=b,c in (d,)\", at byte 12: ")
        );
    }
}
