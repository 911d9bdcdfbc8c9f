//! Reading the Prometheus text exposition format back, for tests that check `/metrics`.
//!
//! This module is responsible for turning sample lines into values so a test can assert on a
//! counter's value with its exact labels, rather than on a substring of the page. Strict on
//! purpose: a malformed line panics, which is a failed test.

/// One sample line: `name{k="v",…} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric name, with any `_bucket`/`_count`/`_sum` suffix.
    pub name: String,
    /// The labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// The value (`+Inf` as infinity).
    pub value: f64,
}

/// Parses the sample lines of `text` (comments and blank lines skipped).
///
/// # Panics
/// On a line that is not a sample.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Sample {
    let (head, value) = line.rsplit_once(' ').expect("name and value");
    let (name, labels) = match head.split_once('{') {
        None => (head.to_owned(), Vec::new()),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}').expect("closing brace");
            let labels = body
                .split("\",")
                .map(|kv| {
                    let (k, v) = kv.split_once("=\"").expect("key=\"value\"");
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels)
        }
    };
    let value = match value {
        "+Inf" => f64::INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    Sample {
        name,
        labels,
        value,
    }
}

/// The samples named `name` whose labels are exactly `labels` — plus any `le`, for the buckets
/// of a histogram, unless `labels` names one (label order does not matter).
pub fn series<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    let wants_le = labels.iter().any(|(k, _)| *k == "le");
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            let own: Vec<_> = s
                .labels
                .iter()
                .filter(|(k, _)| wants_le || k != "le")
                .collect();
            own.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| own.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .collect()
}

/// The value of the one sample named `name` with exactly `labels`.
///
/// # Panics
/// When several samples match (a histogram's buckets: use [`series`]).
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found = series(samples, name, labels);
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().map(|s| s.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels() {
        let text = "# HELP a A.\n# TYPE a counter\na_total 3\nb{zone=\"x.\",rcode=\"NOERROR\"} 1.5\nc_bucket{le=\"+Inf\"} +Inf\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 3);
        assert_eq!(value(&samples, "a_total", &[]), Some(3.0));
        assert_eq!(
            value(&samples, "b", &[("rcode", "NOERROR"), ("zone", "x.")]),
            Some(1.5)
        );
        // Exactly these labels: a subset does not match.
        assert_eq!(value(&samples, "b", &[("rcode", "NOERROR")]), None);
        assert_eq!(samples[2].value, f64::INFINITY);
    }

    #[test]
    #[should_panic(expected = "name and value")]
    fn a_malformed_line_panics() {
        parse("garbage\n");
    }
}
