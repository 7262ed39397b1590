//! Completeness check for JPEG files.
//!
//! PIL refuses a JPEG whose data stops before the end-of-image marker ("image file is
//! truncated"), even when only the final two bytes are missing; the `image` crate's decoder pads
//! such a file with grey and succeeds. The header segments are walked (so an EXIF thumbnail's
//! own markers are skipped) up to the first start-of-scan; after that, entropy-coded data never
//! contains `FF D9` (an `FF` data byte is always followed by `00` or a restart marker), so the
//! file is complete exactly when `FF D9` occurs somewhere after it.

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

/// `Err(reason)` when the file is cut short.
pub(super) fn check_complete(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != SOI {
        return Err("missing JPEG start-of-image marker".into());
    }
    let mut pos = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while pos < bytes.len() && bytes[pos] != 0xFF {
            pos += 1;
        }
        while pos < bytes.len() && bytes[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos) else {
            return Err("file is truncated: it ends inside the JPEG headers".into());
        };
        pos += 1;
        match marker {
            SOS => break,
            EOI => return Err("end-of-image marker before any scan data".into()),
            // Stand-alone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {
                let Some(len) = bytes.get(pos..pos + 2) else {
                    return Err("file is truncated: it ends inside the JPEG headers".into());
                };
                pos += usize::from(u16::from_be_bytes([len[0], len[1]]));
            }
        }
    }
    let scans = bytes.get(pos..).unwrap_or_default();
    if scans.windows(2).any(|w| w == [0xFF, EOI]) {
        Ok(())
    } else {
        Err("file is truncated: no end-of-image marker after the scan data".into())
    }
}

#[cfg(test)]
mod tests {
    use super::check_complete;

    fn minimal(tail: &[u8]) -> Vec<u8> {
        // SOI, an APP1 segment that itself contains FF D9 (as an EXIF thumbnail would), SOS.
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00];
        v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34]);
        v.extend_from_slice(tail);
        v
    }

    #[test]
    fn complete_only_with_eoi_after_the_scan() {
        assert!(check_complete(&minimal(&[0xFF, 0xD9])).is_ok());
        assert!(check_complete(&minimal(&[0xFF, 0xD9, 1, 2, 3])).is_ok());
        // The thumbnail's FF D9 inside APP1 must not count.
        assert!(check_complete(&minimal(&[])).is_err());
        assert!(check_complete(&minimal(&[0xFF])).is_err());
        assert!(check_complete(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00]).is_err());
        assert!(check_complete(b"GIF89a").is_err());
    }
}
