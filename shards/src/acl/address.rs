//! White-list address patterns of `plain_acl.yml` (ops-surface §6.1): `*` (or `*.*.*.*`),
//! one address, a comma list, a trailing wildcard `192.168.*`, a range in one segment
//! `192.168.1.1-100`, a brace list `192.168.1.{1,2,3}`. IPv6 addresses match as a whole.

use std::net::IpAddr;

/// One segment of an IPv4 pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Any,
    Range(u8, u8),
    Set(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Alternative {
    All,
    /// Four segments; a pattern that stops early with `*` matches the rest.
    V4(Vec<Segment>),
    Exact(IpAddr),
}

/// A parsed pattern: a request's address matches if any alternative does. An empty pattern
/// matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPattern(Vec<Alternative>);

impl AddressPattern {
    pub fn parse(text: &str) -> Result<AddressPattern, String> {
        let mut alternatives = Vec::new();
        for part in split_outside_braces(text.trim()) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            alternatives.push(alternative(part).ok_or_else(|| {
                format!("`{part}` is not an address pattern (expected e.g. 192.168.1.*, 10.0.0.1-100, 10.0.{{1,2}}.5 or *)")
            })?);
        }
        Ok(AddressPattern(alternatives))
    }

    pub fn matches(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        self.0.iter().any(|alt| match alt {
            Alternative::All => true,
            Alternative::Exact(ip) => *ip == addr,
            Alternative::V4(segments) => match addr {
                IpAddr::V4(v4) => v4
                    .octets()
                    .iter()
                    .zip(segments.iter().chain(std::iter::repeat(&Segment::Any)))
                    .all(|(octet, segment)| match segment {
                        Segment::Any => true,
                        Segment::Range(lo, hi) => (lo..=hi).contains(&octet),
                        Segment::Set(set) => set.contains(octet),
                    }),
                IpAddr::V6(_) => false,
            },
        })
    }
}

/// Splits on commas that are not inside `{…}`.
fn split_outside_braces(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
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

fn alternative(part: &str) -> Option<Alternative> {
    if part == "*" {
        return Some(Alternative::All);
    }
    if let Ok(ip) = part.parse::<IpAddr>() {
        return Some(Alternative::Exact(ip));
    }
    let texts: Vec<&str> = part.split('.').collect();
    if texts.len() > 4 {
        return None;
    }
    // Fewer than four segments only with a closing wildcard: `10.1.*`.
    if texts.len() < 4 && texts.last() != Some(&"*") {
        return None;
    }
    let segments = texts
        .iter()
        .map(|t| segment(t))
        .collect::<Option<Vec<_>>>()?;
    if segments.iter().all(|s| *s == Segment::Any) {
        return Some(Alternative::All);
    }
    Some(Alternative::V4(segments))
}

fn segment(text: &str) -> Option<Segment> {
    if text == "*" {
        return Some(Segment::Any);
    }
    if let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let set = inner
            .split(',')
            .map(|n| n.trim().parse::<u8>().ok())
            .collect::<Option<Vec<_>>>()?;
        return (!set.is_empty()).then_some(Segment::Set(set));
    }
    if let Some((lo, hi)) = text.split_once('-') {
        let (lo, hi) = (lo.parse::<u8>().ok()?, hi.parse::<u8>().ok()?);
        return (lo <= hi).then_some(Segment::Range(lo, hi));
    }
    let n = text.parse::<u8>().ok()?;
    Some(Segment::Range(n, n))
}
