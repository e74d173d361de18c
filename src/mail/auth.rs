//! Reading `Authentication-Results` (RFC 8601) and the one rule built on it:
//! with a trusted `authserv-id` configured, a message counts as authenticated
//! only when the FIRST header carrying that id (the one our own server wrote on
//! top; a sender can add look-alikes lower down) says `dmarc=pass`, or, with no
//! DMARC result at all, `spf=pass` for the `From` domain.
//!
//! This module only reads the header text; it checks no signature and asks no
//! DNS. Whether to require authentication is the caller's choice.

/// One `method=result` with its properties, all names lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// `dmarc`, `spf`, `dkim`, … (any `/version` removed).
    pub method: String,
    /// `pass`, `fail`, `none`, …
    pub result: String,
    /// `ptype.property` → value, such as `smtp.mailfrom` → `dana@example.com`.
    pub properties: Vec<(String, String)>,
}

impl MethodResult {
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One parsed `Authentication-Results` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// Who wrote it, as written (compare case-insensitively).
    pub authserv_id: String,
    pub results: Vec<MethodResult>,
}

/// The most results read from one header.
const MAX_RESULTS: usize = 32;

/// Parses one header value (already unfolded); `None` when it has no
/// authserv-id.
pub fn parse_results(value: &str) -> Option<AuthResults> {
    let text = without_comments(value);
    let mut segments = split_outside_quotes(&text, ';').into_iter();
    let authserv_id = segments.next()?.split_whitespace().next()?.to_string();
    let mut results = Vec::new();
    for segment in segments.take(MAX_RESULTS) {
        let pairs = pairs(segment);
        let Some(((method, result), rest)) = pairs.split_first() else {
            continue;
        };
        let method = method.split('/').next().unwrap_or_default().to_string();
        results.push(MethodResult {
            method,
            result: result.to_ascii_lowercase(),
            properties: rest
                .iter()
                .filter(|(name, _)| name != "reason")
                .cloned()
                .collect(),
        });
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

/// Whether the message counts as authenticated by the trusted server: the first
/// header from `trusted_authserv_id` says `dmarc=pass` (for the From domain,
/// when it names one), or has no DMARC result and says `spf=pass` with
/// `smtp.mailfrom` in the From domain. `from_domain` is lowercased.
pub fn is_authenticated(headers: &[String], trusted_authserv_id: &str, from_domain: &str) -> bool {
    let Some(ours) = headers
        .iter()
        .filter_map(|h| parse_results(h))
        .find(|r| r.authserv_id.eq_ignore_ascii_case(trusted_authserv_id))
    else {
        return false;
    };
    let dmarc: Vec<&MethodResult> = ours
        .results
        .iter()
        .filter(|r| r.method == "dmarc")
        .collect();
    if !dmarc.is_empty() {
        return dmarc.iter().all(|r| {
            r.result == "pass"
                && r.property("header.from")
                    .is_none_or(|d| d.eq_ignore_ascii_case(from_domain))
        });
    }
    ours.results.iter().any(|r| {
        r.method == "spf"
            && r.result == "pass"
            && r.property("smtp.mailfrom").is_some_and(|mailfrom| {
                let domain = mailfrom.rsplit_once('@').map_or(mailfrom, |(_, d)| d);
                domain.eq_ignore_ascii_case(from_domain)
            })
    })
}

/// The value with `( … )` comments removed (nested, with `\` escapes), outside
/// quoted strings.
fn without_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted || depth > 0 => {
                let next = chars.next();
                if depth == 0 {
                    out.push(c);
                    out.extend(next);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// `name = value` pairs of one resinfo, names lowercased, quoted values
/// unquoted. A bare word (`none`) ends the list.
fn pairs(segment: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = segment.trim_start();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let Some(after) = rest.strip_prefix('=') else {
            break;
        };
        rest = after.trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut end = quoted.len();
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            value = quoted[..end].to_string();
            rest = quoted.get(end + 1..).unwrap_or_default().trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..end].to_string();
            rest = rest[end..].trim_start();
        }
        if name.is_empty() {
            break;
        }
        out.push((name, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn parses_the_rfc_8601_examples() {
        let r = parse_results(
            "example.com (comment; with a semicolon) 1; dkim=pass (good signature) header.d=mail-router.example.net; \
             spf = pass smtp.mailfrom=\"sender;odd\"@example.net reason=\"all ok; really\"; dmarc=none",
        )
        .unwrap();
        assert_eq!(r.authserv_id, "example.com");
        assert_eq!(r.results.len(), 3);
        assert_eq!(r.results[0].method, "dkim");
        assert_eq!(r.results[1].method, "spf");
        assert_eq!(r.results[1].result, "pass");
        assert_eq!(r.results[2].result, "none");
        let none = parse_results("mx.example.org; none").unwrap();
        assert!(none.results.is_empty());
        assert_eq!(parse_results("   "), None);
    }

    #[test]
    fn dmarc_pass_from_the_trusted_server_counts() {
        let headers = h(&[
            "mx.example.org; spf=fail smtp.mailfrom=x.net; dmarc=pass header.from=example.com",
        ]);
        assert!(is_authenticated(&headers, "MX.example.org", "example.com"));
        assert!(!is_authenticated(
            &headers,
            "other.example.org",
            "example.com"
        ));
        let wrong_domain = h(&["mx.example.org; dmarc=pass header.from=evil.example"]);
        assert!(!is_authenticated(
            &wrong_domain,
            "mx.example.org",
            "example.com"
        ));
    }

    #[test]
    fn a_dmarc_failure_is_not_saved_by_spf() {
        let headers = h(&[
            "mx.example.org; spf=pass smtp.mailfrom=a@example.com; dmarc=fail header.from=example.com",
        ]);
        assert!(!is_authenticated(&headers, "mx.example.org", "example.com"));
    }

    #[test]
    fn spf_pass_counts_only_without_dmarc_and_for_the_from_domain() {
        let headers = h(&["mx.example.org; spf=pass smtp.mailfrom=a@Example.com"]);
        assert!(is_authenticated(&headers, "mx.example.org", "example.com"));
        let other = h(&["mx.example.org; spf=pass smtp.mailfrom=a@bulk.example.net"]);
        assert!(!is_authenticated(&other, "mx.example.org", "example.com"));
        let helo = h(&["mx.example.org; spf=pass smtp.helo=example.com"]);
        assert!(!is_authenticated(&helo, "mx.example.org", "example.com"));
    }

    #[test]
    fn only_the_first_header_of_the_trusted_server_counts() {
        // Topmost is ours and fails; a forged one lower down says pass.
        let headers = h(&[
            "other.example.org; dmarc=pass header.from=example.com",
            "mx.example.org; dmarc=fail header.from=example.com",
            "mx.example.org; dmarc=pass header.from=example.com",
        ]);
        assert!(!is_authenticated(&headers, "mx.example.org", "example.com"));
        assert!(!is_authenticated(&[], "mx.example.org", "example.com"));
    }

    proptest::proptest! {
        #![proptest_config(crate::mail::proptest_config())]

        #[test]
        fn reading_any_header_never_panics(value in "[a-z.;=() \"\\\\/@0-9-]{0,120}") {
            let _ = parse_results(&value);
            let _ = is_authenticated(&[value], "mx.example.org", "example.com");
        }
    }
}
