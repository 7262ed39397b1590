//! Operands of the text opcodes of protocols 0 and 1 (one value per line).
use super::value::Value;

/// Decodes the line operand of `INT`, `LONG`, `FLOAT`, `STRING`, `UNICODE` or `PERSID`.
pub fn decode(op: u8, line: &[u8]) -> Result<Value, String> {
    let ascii = || std::str::from_utf8(line).map_err(|_| "non-ASCII number".to_string());
    match op {
        b'I' => match line {
            b"00" => Ok(Value::Bool(false)),
            b"01" => Ok(Value::Bool(true)),
            _ => int(ascii()?),
        },
        b'L' => int(ascii()?.trim_end_matches('L')),
        b'F' => ascii()?
            .trim()
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|e| format!("bad FLOAT operand: {e}")),
        b'S' => quoted(line),
        b'V' => raw_unicode_escape(line).map(Value::String),
        b'P' => Ok(Value::String(String::from_utf8_lossy(line).into_owned())),
        _ => Err(format!("opcode 0x{op:02x} has no text operand")),
    }
}

/// A memo index written as decimal text (`GET`, `PUT`).
pub fn decimal_key(line: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| "bad memo index".to_string())
}

/// Python 2 `str` bytes: text when they are UTF-8, raw bytes otherwise.
pub fn py2_str(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => Value::Bytes(b.to_vec()),
    }
}

fn int(s: &str) -> Result<Value, String> {
    let v: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("bad integer operand {s:?}"))?;
    Ok(match i64::try_from(v) {
        Ok(i) => Value::Int(i),
        Err(_) => {
            let mut b = v.to_le_bytes().to_vec();
            let fill = if v < 0 { 0xff } else { 0 };
            // Keep the shortest form whose top bit still carries the sign.
            while b.len() > 1 && b[b.len() - 1] == fill && (b[b.len() - 2] & 0x80) == (fill & 0x80)
            {
                b.pop();
            }
            Value::BigInt(b)
        }
    })
}

/// `STRING`: a Python repr in matching quotes with backslash escapes.
fn quoted(line: &[u8]) -> Result<Value, String> {
    let bad = || "STRING operand is not a quoted literal".to_string();
    if line.len() < 2 || line[0] != line[line.len() - 1] || !matches!(line[0], b'\'' | b'"') {
        return Err(bad());
    }
    let inner = &line[1..line.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let e = *inner.get(i).ok_or_else(bad)?;
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'x' => {
                let h = inner.get(i..i + 2).ok_or_else(bad)?;
                let h = std::str::from_utf8(h).map_err(|_| bad())?;
                out.push(u8::from_str_radix(h, 16).map_err(|_| bad())?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 && i < inner.len() && (b'0'..=b'7').contains(&inner[i]) {
                    v = v * 8 + u32::from(inner[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'\n' => {}
            other => out.push(other),
        }
    }
    Ok(py2_str(&out))
}

/// `UNICODE`: latin-1 text where only `\uXXXX` and `\UXXXXXXXX` are escapes.
fn raw_unicode_escape(line: &[u8]) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        let width = match (c, line.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => 0,
        };
        if width == 0 {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let hex = line
            .get(i + 2..i + 2 + width)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
            .ok_or_else(|| "bad \\u escape in UNICODE operand".to_string())?;
        out.push(hex);
        i += 2 + width;
    }
    Ok(out)
}
