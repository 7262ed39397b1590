//! The two HTML-entity decoders CLIP's cleaning runs: Python's `html.unescape` (lenient, HTML5
//! rules: bare `&amp`, longest-prefix names, numeric references with the Windows-1252 repairs)
//! and ftfy's stricter `unescape_html` (only `;`-terminated references, plus all-caps names).
//!
//! The entity table is the WHATWG one (`htmlize::ENTITIES`, 2231 names, the same set as
//! Python's `html.entities.html5`); the decoding rules are written here to follow CPython's.
use regex::{Captures, Regex};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Windows-1252's meaning of the bytes 0x80..=0x9F; the five bytes it leaves undefined map to
/// themselves, as in Python's `html._invalid_charrefs` and ftfy's "sloppy-windows-1252".
pub(super) fn cp1252_c1(c: u32) -> char {
    const TABLE: [u32; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    debug_assert!((0x80..=0x9F).contains(&c));
    char::from_u32(TABLE[(c - 0x80) as usize]).unwrap_or('\u{FFFD}')
}

/// Value of a named reference given with its leading `&` (`"&amp;"`, `"&amp"`).
fn html5_entity(name_with_amp: &str) -> Option<&'static str> {
    htmlize::ENTITIES
        .get(name_with_amp.as_bytes())
        .map(|v| std::str::from_utf8(v).expect("htmlize entity values are UTF-8"))
}

/// What CPython substitutes for `&#<num>` (after its Windows-1252 and invalid-codepoint rules).
fn numeric_reference(num: Option<u32>) -> String {
    let Some(num) = num else {
        // Too many digits for u32: certainly above U+10FFFF.
        return '\u{FFFD}'.to_string();
    };
    match num {
        0 => return '\u{FFFD}'.to_string(),
        0x0D => return '\r'.to_string(),
        0x80..=0x9F => return cp1252_c1(num).to_string(),
        0xD800..=0xDFFF => return '\u{FFFD}'.to_string(),
        n if n > 0x10FFFF => return '\u{FFFD}'.to_string(),
        _ => {}
    }
    let invalid = matches!(num, 0x01..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0xFDD0..=0xFDEF)
        || (num & 0xFFFE) == 0xFFFE;
    if invalid {
        return String::new();
    }
    char::from_u32(num).map(String::from).unwrap_or_default()
}

fn parse_number(digits: &str, radix: u32) -> Option<u32> {
    // Leading zeros must not overflow the parse, so strip them first.
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    u32::from_str_radix(digits, radix).ok()
}

fn replace_charref(body: &str) -> String {
    if let Some(num) = body.strip_prefix('#') {
        let num = num.trim_end_matches(';');
        let value = match num.strip_prefix(['x', 'X']) {
            Some(hex) => parse_number(hex, 16),
            None => parse_number(num, 10),
        };
        return numeric_reference(value);
    }
    let mut key = String::with_capacity(body.len() + 1);
    key.push('&');
    key.push_str(body);
    if let Some(v) = html5_entity(&key) {
        return v.to_string();
    }
    // Longest known prefix of at least two characters wins; the rest is kept verbatim.
    let bounds: Vec<usize> = body.char_indices().map(|(i, _)| i).skip(2).collect();
    for &end in bounds.iter().rev() {
        if let Some(v) = html5_entity(&key[..end + 1]) {
            return format!("{v}{}", &body[end..]);
        }
    }
    key
}

/// Python's `html.unescape`.
pub(super) fn py_unescape(s: &str) -> String {
    static CHARREF: OnceLock<Regex> = OnceLock::new();
    if !s.contains('&') {
        return s.to_string();
    }
    let re = CHARREF.get_or_init(|| {
        Regex::new(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\x0C <&#;]{1,32};?)")
            .expect("charref pattern")
    });
    re.replace_all(s, |c: &Captures| replace_charref(&c[1]))
        .into_owned()
}

/// ftfy's entity table: every `;`-terminated HTML5 name, plus the all-caps spelling of the
/// all-lowercase names whose caps form means nothing else to `html.unescape`.
fn ftfy_entities() -> &'static HashMap<String, String> {
    static TABLE: OnceLock<HashMap<String, String>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        for (key, value) in htmlize::ENTITIES.entries() {
            let (Ok(key), Ok(value)) = (std::str::from_utf8(key), std::str::from_utf8(value))
            else {
                continue;
            };
            if !key.ends_with(';') {
                continue;
            }
            table.insert(key.to_string(), value.to_string());
            if key == key.to_lowercase() {
                let upper = key.to_uppercase();
                if py_unescape(&upper) == upper {
                    table.insert(upper, value.to_uppercase());
                }
            }
        }
        table
    })
}

/// ftfy's `unescape_html` fixer.
pub(super) fn ftfy_unescape(s: &str) -> String {
    static ENTITY: OnceLock<Regex> = OnceLock::new();
    if !s.contains('&') {
        return s.to_string();
    }
    let re = ENTITY.get_or_init(|| Regex::new(r"&#?[0-9A-Za-z]{1,24};").expect("entity pattern"));
    re.replace_all(s, |c: &Captures| {
        let text = &c[0];
        if let Some(v) = ftfy_entities().get(text) {
            return v.clone();
        }
        if text.starts_with("&#") {
            let decoded = py_unescape(text);
            // A reference that only partly decoded keeps its ';': leave the whole of it alone.
            if !decoded.contains(';') {
                return decoded;
            }
        }
        text.to_string()
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_unescape_rules() {
        assert_eq!(py_unescape("a &amp; b"), "a & b");
        assert_eq!(py_unescape("&ampfoo"), "&foo");
        assert_eq!(py_unescape("&notit;"), "¬it;");
        assert_eq!(py_unescape("&#39;&#x27;&#X27"), "'''");
        assert_eq!(py_unescape("&#150;"), "\u{2013}");
        assert_eq!(py_unescape("&#1;x&#0;"), "x\u{FFFD}");
        assert_eq!(py_unescape("&#99999999999999999999;"), "\u{FFFD}");
        assert_eq!(py_unescape("&zz;"), "&zz;");
    }

    #[test]
    fn ftfy_unescape_rules() {
        assert_eq!(ftfy_unescape("P&EACUTE;REZ"), "P\u{c9}REZ");
        assert_eq!(ftfy_unescape("BUNDESSTRA&SZLIG;E"), "BUNDESSTRASSE");
        assert_eq!(ftfy_unescape("&ntilde; &NTILDE; &nTILDE;"), "ñ Ñ &nTILDE;");
        assert_eq!(ftfy_unescape("this&not that"), "this&not that");
        assert_eq!(ftfy_unescape("&#x2019;"), "\u{2019}");
    }
}
