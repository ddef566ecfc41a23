//! The simulator's fake XVA: a one-member ustar archive (as a real XVA is a tar) whose member
//! is a JSON document with the VM record and its disks. Deterministic: the same VM state
//! gives the same bytes (mtime 0, record in field order). Disk contents are not simulated.

use std::io::Read;

/// The archive's only member.
pub const MEMBER: &str = "xo-sim-vm.json";
/// `format` in the document, so an import can tell our exports from anything else.
pub const FORMAT: &str = "xo-rs-simulator-xva";

/// A ustar archive holding `data` as [`MEMBER`].
pub fn write(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_ustar();
    header.set_path(MEMBER)?;
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut archive = tar::Builder::new(Vec::with_capacity(data.len() + 2048));
    archive.append(&header, data)?;
    archive.into_inner()
}

/// The member's bytes when `bytes` is an archive [`write`] made, else `None` (any other or
/// damaged archive, or not a tar at all).
pub fn read(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut archive = tar::Archive::new(bytes);
    let mut entry = archive.entries().ok()?.next()?.ok()?;
    if entry.header().as_ustar().is_none() || entry.path_bytes().as_ref() != MEMBER.as_bytes() {
        return None;
    }
    // The declared size cannot exceed what was sent: no allocation beyond the body.
    let size = usize::try_from(entry.size())
        .ok()
        .filter(|&n| n <= bytes.len())?;
    let mut out = Vec::with_capacity(size);
    entry.read_to_end(&mut out).ok()?;
    (out.len() == size).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = 512;

    /// Re-seals a header changed in place, as a writer would.
    fn reseal(tar: &mut [u8], edit: impl FnOnce(&mut tar::Header)) {
        let mut h = tar::Header::from_byte_slice(&tar[..BLOCK]).clone();
        edit(&mut h);
        h.set_cksum();
        tar[..BLOCK].copy_from_slice(h.as_bytes());
    }

    #[test]
    fn round_trip_and_layout() {
        let data = br#"{"format":"x"}"#;
        let tar = write(data).unwrap();
        // Header, one data block, two end blocks.
        assert_eq!(tar.len(), 4 * BLOCK);
        assert_eq!(read(&tar).as_deref(), Some(&data[..]));
        assert_eq!(write(data).unwrap(), tar, "deterministic");
    }

    #[test]
    fn foreign_or_damaged_archives_are_not_ours() {
        let mut tar = write(b"{}").unwrap();
        assert_eq!(read(&tar[..100]), None, "truncated header");
        tar[0] = b'y';
        assert_eq!(read(&tar), None, "checksum mismatch");
        let mut tar = write(b"{}").unwrap();
        reseal(&mut tar, |h| h.set_path("other.json").unwrap());
        assert_eq!(read(&tar), None, "other member name");
        let mut tar = write(b"{}").unwrap();
        reseal(&mut tar, |h| h.set_size(1 << 32));
        assert_eq!(read(&tar), None, "size beyond the body");
        assert_eq!(read(b""), None);
    }
}
