//! Where a key sits in a grid file's text: errors name the line the user wrote.

/// The line (1-based) where a top-level key is written.
pub(crate) fn top_level_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| key_of(l) == Some(key) && !l.starts_with([' ', '\t']))
        .map(|i| i + 1)
}

/// The line (1-based) of `key` inside the block that starts at top-level key `parent`.
pub(crate) fn nested_line(text: &str, parent: &str, key: &str) -> Option<usize> {
    let start = top_level_line(text, parent)?;
    text.lines()
        .enumerate()
        .skip(start)
        .take_while(|(_, l)| l.trim().is_empty() || l.starts_with([' ', '\t', '#']))
        .find(|(_, l)| key_of(l.trim_start()) == Some(key))
        .map(|(i, _)| i + 1)
}

/// The mapping key a line starts, quotes removed.
pub(crate) fn key_of(line: &str) -> Option<&str> {
    let (k, _) = line.split_once(':')?;
    let k = k.trim();
    Some(k.trim_matches(|c| c == '"' || c == '\''))
}
