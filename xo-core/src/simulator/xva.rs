//! The simulator's fake XVA: a one-member ustar archive (as a real XVA is a tar) whose member
//! is a JSON document with the VM record and its disks. Deterministic: the same VM state
//! gives the same bytes (mtime 0, record in field order). Disk contents are not simulated.

/// The archive's only member.
pub const MEMBER: &str = "xo-sim-vm.json";
/// `format` in the document, so an import can tell our exports from anything else.
pub const FORMAT: &str = "xo-rs-simulator-xva";

const BLOCK: usize = 512;

/// A ustar archive holding `data` as [`MEMBER`], ended by two zero blocks.
pub fn write(data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; BLOCK];
    h[..MEMBER.len()].copy_from_slice(MEMBER.as_bytes());
    put(&mut h[100..108], b"0000644\0");
    put(&mut h[108..116], b"0000000\0");
    put(&mut h[116..124], b"0000000\0");
    put(
        &mut h[124..136],
        format!("{:011o}\0", data.len()).as_bytes(),
    );
    put(&mut h[136..148], b"00000000000\0");
    h[156] = b'0';
    put(&mut h[257..265], b"ustar\x0000");
    let sum = checksum(&h);
    put(&mut h[148..156], format!("{sum:06o}\0 ").as_bytes());
    let padded = data.len().div_ceil(BLOCK) * BLOCK;
    let mut out = Vec::with_capacity(BLOCK + padded + 2 * BLOCK);
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(BLOCK + padded + 2 * BLOCK, 0);
    out
}

/// The member's bytes when `bytes` is an archive [`write`] made (header checked), else `None`.
pub fn read(bytes: &[u8]) -> Option<&[u8]> {
    let h: &[u8; BLOCK] = bytes.get(..BLOCK)?.try_into().ok()?;
    let name_end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
    if &h[..name_end] != MEMBER.as_bytes() || &h[257..263] != b"ustar\0" {
        return None;
    }
    if octal(&h[148..156])? != checksum(h) {
        return None;
    }
    let size = usize::try_from(octal(&h[124..136])?).ok()?;
    bytes.get(BLOCK..BLOCK.checked_add(size)?)
}

fn put(dst: &mut [u8], src: &[u8]) {
    dst[..src.len()].copy_from_slice(src);
}

/// The ustar header checksum: every byte summed, the checksum field counted as spaces.
fn checksum(h: &[u8; BLOCK]) -> u64 {
    h.iter()
        .enumerate()
        .map(|(i, &b)| u64::from(if (148..156).contains(&i) { b' ' } else { b }))
        .sum()
}

/// An octal number field (NUL/space padded).
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    u64::from_str_radix(digits, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let data = br#"{"format":"x"}"#;
        let tar = write(data);
        // Header, one data block, two end blocks.
        assert_eq!(tar.len(), 4 * BLOCK);
        assert_eq!(read(&tar), Some(&data[..]));
        assert_eq!(write(data), tar, "deterministic");
    }

    #[test]
    fn foreign_or_damaged_archives_are_not_ours() {
        let mut tar = write(b"{}");
        assert_eq!(read(&tar[..100]), None, "truncated header");
        tar[0] = b'y';
        assert_eq!(read(&tar), None, "other member name");
        let mut tar = write(b"{}");
        tar[BLOCK - 1] = 1;
        assert_eq!(read(&tar), None, "checksum mismatch");
        let mut tar = write(b"{}");
        let huge = format!("{:011o}\0", 1u64 << 32);
        tar[124..136].copy_from_slice(huge.as_bytes());
        let sum = checksum(tar[..BLOCK].try_into().unwrap());
        tar[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(read(&tar), None, "size beyond the body");
        assert_eq!(read(b""), None);
    }
}
