//! Label selectors as the API server parses them from `?labelSelector=`.
//!
//! This module is responsible for the selector grammar of `k8s.io/apimachinery/pkg/labels`:
//! comma-joined requirements, each `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)` or
//! `k notin (a,b)`. It leaves deciding which objects a request sees to the store.

use std::collections::BTreeMap;

/// A parsed label selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    /// `k=v` / `k==v`
    Equals(String, String),
    /// `k!=v`: also true when `k` is absent, as in Kubernetes.
    NotEquals(String, String),
    /// `k`
    Exists(String),
    /// `!k`
    NotExists(String),
    /// `k in (a,b)`
    In(String, Vec<String>),
    /// `k notin (a,b)`: also true when `k` is absent.
    NotIn(String, Vec<String>),
}

impl LabelSelector {
    /// Parses a selector; an empty string selects everything.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(Requirement::parse(part)?);
        }
        Ok(Self(requirements))
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }
}

impl Requirement {
    fn parse(part: &str) -> Result<Self, String> {
        let bad = || format!("unable to parse requirement: {part:?}");
        if let Some(key) = part.strip_prefix('!') {
            return Ok(Self::NotExists(key.trim().to_owned()));
        }
        if let Some((k, v)) = part.split_once("!=") {
            return Ok(Self::NotEquals(k.trim().to_owned(), v.trim().to_owned()));
        }
        if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            return Ok(Self::Equals(k.trim().to_owned(), v.trim().to_owned()));
        }
        for (word, notin) in [(" notin ", true), (" in ", false)] {
            if let Some((k, set)) = part.split_once(word) {
                let set = set
                    .trim()
                    .strip_prefix('(')
                    .and_then(|s| s.strip_suffix(')'))
                    .ok_or_else(bad)?;
                let values = set.split(',').map(|v| v.trim().to_owned()).collect();
                let key = k.trim().to_owned();
                return Ok(if notin {
                    Self::NotIn(key, values)
                } else {
                    Self::In(key, values)
                });
            }
        }
        if part.contains(char::is_whitespace) || part.contains(['(', ')']) {
            return Err(bad());
        }
        Ok(Self::Exists(part.to_owned()))
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Equals(k, v) => labels.get(k) == Some(v),
            Self::NotEquals(k, v) => labels.get(k) != Some(v),
            Self::Exists(k) => labels.contains_key(k),
            Self::NotExists(k) => !labels.contains_key(k),
            Self::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Self::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        }
    }
}

/// Splits at commas outside parentheses (`a=b,c in (x,y)` is two requirements).
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
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
    fn each_requirement_form() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let db = labels(&[("app", "db")]);
        let cases = [
            ("", true, true),
            ("app=web", true, false),
            ("app==web", true, false),
            ("app!=web", false, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("app=web,tier", true, false),
            ("app in (web, db)", true, true),
            ("app notin (web),!tier", false, true),
            ("missing!=x", true, true),
        ];
        for (selector, on_web, on_db) in cases {
            let s = LabelSelector::parse(selector).unwrap();
            assert_eq!(s.matches(&web), on_web, "{selector} on web");
            assert_eq!(s.matches(&db), on_db, "{selector} on db");
        }
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("a b").is_err());
    }
}
