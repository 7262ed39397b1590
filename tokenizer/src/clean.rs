//! CLIP's text cleaning: `ftfy.fix_text` (the deterministic fixers, default configuration),
//! then `html.unescape` twice, whitespace collapsing and lowercasing.
use super::html::{cp1252_c1, ftfy_unescape, py_unescape};
use regex::Regex;
use std::collections::HashMap;
use std::sync::OnceLock;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// ftfy cuts lines longer than this into separately fixed pieces.
const MAX_DECODE_LENGTH: usize = 1_000_000;

/// The whole of `basic_clean` + `whitespace_clean` + `.lower()`, as CLIP's `encode` applies it.
pub(super) fn clean(text: &str) -> String {
    let text = fix_text(text);
    let text = py_unescape(&py_unescape(&text));
    let text = py_strip(&text);
    static WHITESPACE: OnceLock<Regex> = OnceLock::new();
    // Rust's `\s` is Unicode White_Space, the very set the `regex` module's `\s` matches.
    let ws = WHITESPACE.get_or_init(|| Regex::new(r"\s+").expect("whitespace pattern"));
    let text = ws.replace_all(text, " ");
    py_strip(&text).to_lowercase()
}

/// `str.strip()`: Python's whitespace is White_Space plus the four information separators.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c))
}

/// `ftfy.fix_text` with its defaults, minus mojibake repair (see the module doc of the parent).
pub(super) fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // ftfy stops decoding entities for good once a piece holding '<' (likely real HTML) is seen.
    let mut unescape = true;
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        // A line of at most MAX_DECODE_LENGTH bytes has at most that many chars.
        if end > MAX_DECODE_LENGTH {
            if let Some((cut, _)) = rest[..end].char_indices().nth(MAX_DECODE_LENGTH) {
                end = cut;
            }
        }
        let (segment, tail) = rest.split_at(end);
        if segment.contains('<') {
            unescape = false;
        }
        out.push_str(&fix_segment(segment, unescape));
        rest = tail;
    }
    out
}

/// ftfy applies its fixers in this order until the text stops changing.
fn fix_segment(segment: &str, unescape: bool) -> String {
    let mut text = segment.to_string();
    loop {
        let before = text.clone();
        if unescape {
            text = ftfy_unescape(&text);
        }
        text = fix_c1_controls(&text);
        text = fix_latin_ligatures(&text);
        text = fix_character_width(&text);
        text = uncurl_quotes(&text);
        text = fix_line_breaks(&text);
        text = remove_terminal_escapes(&text);
        text = remove_control_chars(&text);
        if is_nfc_quick(text.chars()) != IsNormalized::Yes {
            text = text.nfc().collect();
        }
        if text == before {
            return text;
        }
    }
}

fn map_chars(text: &str, f: impl Fn(char, &mut String)) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        f(c, &mut out);
    }
    out
}

/// C1 controls left in the text are read as the Windows-1252 characters of those bytes.
fn fix_c1_controls(text: &str) -> String {
    map_chars(text, |c, out| match c as u32 {
        n @ 0x80..=0x9F => out.push(cp1252_c1(n)),
        _ => out.push(c),
    })
}

fn fix_latin_ligatures(text: &str) -> String {
    map_chars(text, |c, out| {
        let repl = match c {
            'Ĳ' => "IJ",
            'ĳ' => "ij",
            'ŉ' => "ʼn",
            'Ǳ' => "DZ",
            'ǲ' => "Dz",
            'ǳ' => "dz",
            'Ǆ' => "DŽ",
            'ǅ' => "Dž",
            'ǆ' => "dž",
            'Ǉ' => "LJ",
            'ǈ' => "Lj",
            'ǉ' => "lj",
            'Ǌ' => "NJ",
            'ǋ' => "Nj",
            'ǌ' => "nj",
            'ﬀ' => "ff",
            'ﬁ' => "fi",
            'ﬂ' => "fl",
            'ﬃ' => "ffi",
            'ﬄ' => "ffl",
            'ﬅ' => "ſt",
            'ﬆ' => "st",
            _ => {
                out.push(c);
                return;
            }
        };
        out.push_str(repl);
    })
}

/// Halfwidth and fullwidth forms (U+FF01..U+FFEF) become their NFKC equivalents, and the
/// ideographic space a plain space.
fn fix_character_width(text: &str) -> String {
    static WIDTH: OnceLock<HashMap<char, String>> = OnceLock::new();
    let width = WIDTH.get_or_init(|| {
        let mut map = HashMap::from([('\u{3000}', " ".to_string())]);
        for c in (0xFF01..0xFFF0).filter_map(char::from_u32) {
            let alt: String = std::iter::once(c).nfkc().collect();
            if alt.chars().ne(std::iter::once(c)) {
                map.insert(c, alt);
            }
        }
        map
    });
    map_chars(text, |c, out| match width.get(&c) {
        Some(alt) => out.push_str(alt),
        None => out.push(c),
    })
}

fn uncurl_quotes(text: &str) -> String {
    map_chars(text, |c, out| match c {
        '\u{02BC}' | '\u{2018}'..='\u{201B}' => out.push('\''),
        '\u{201C}'..='\u{201F}' => out.push('"'),
        _ => out.push(c),
    })
}

fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

fn remove_terminal_escapes(text: &str) -> String {
    static ANSI: OnceLock<Regex> = OnceLock::new();
    if !text.contains('\u{1B}') {
        return text.to_string();
    }
    let re = ANSI.get_or_init(|| Regex::new(r"\x1B\[(?:\d|;)*[a-zA-Z]").expect("ansi pattern"));
    re.replace_all(text, "").into_owned()
}

fn remove_control_chars(text: &str) -> String {
    map_chars(text, |c, out| {
        let drop = matches!(
            c,
            '\u{00}'..='\u{08}'
                | '\u{0B}'
                | '\u{0E}'..='\u{1F}'
                | '\u{7F}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFC}'
        );
        if !drop {
            out.push(c);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftfy_documented_examples() {
        assert_eq!(
            fix_text("Broken text&hellip; it&#x2019;s \u{fb02}ubberi\u{fb01}c!"),
            "Broken text\u{2026} it's flubberific!"
        );
        assert_eq!(fix_text("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES");
        assert_eq!(fix_text("Ｕﾀｰﾝ"), "Uターン");
        assert_eq!(fix_text("\u{1b}[36;44mblue\u{1b}[0m"), "blue");
        assert_eq!(fix_text("a\r\nb\rc"), "a\nb\nc");
    }

    #[test]
    fn html_is_left_alone_after_a_tag() {
        assert_eq!(fix_text("&amp;\n<b>&amp;\n&amp;"), "&\n<b>&amp;\n&amp;");
    }

    #[test]
    fn overlong_lines_are_fixed_in_pieces() {
        // ftfy cuts at 1M chars, so an entity straddling the cut stays as it is.
        let straddling = format!("{}&EACUTE;", "é".repeat(999_998));
        assert!(fix_text(&straddling).ends_with("é&EACUTE;"));
        let inside = format!("{}&EACUTE;", "é".repeat(999_990));
        assert!(fix_text(&inside).ends_with("éÉ"));
    }

    #[test]
    fn cleaning_collapses_and_lowercases() {
        assert_eq!(clean("  Hello\t\n  WORLD  "), "hello world");
        assert_eq!(clean("caf\u{65}\u{301} &amp;amp; \u{2019}"), "café & '");
    }
}
