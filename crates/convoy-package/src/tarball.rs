//! Reading and rewriting `.crate` archives while keeping every header
//! (modes, mtimes) as cargo wrote it, so the only differences from cargo's
//! file are the ones Convoy records.

use std::io::{Read, Write};

pub(crate) struct Entry {
    pub(crate) path: String,
    pub(crate) header: tar::Header,
    pub(crate) data: Vec<u8>,
}

pub(crate) fn read_entries(bytes: &[u8]) -> std::io::Result<Vec<Entry>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut entries = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        entries.push(Entry { path, header, data });
    }
    Ok(entries)
}

pub(crate) fn write_entries(entries: &[Entry]) -> std::io::Result<Vec<u8>> {
    // A fixed gzip header (no name, mtime 0) keeps the output a pure
    // function of the entries, so a rerun produces the same checksum.
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    let mut builder = tar::Builder::new(gz);
    for entry in entries {
        let mut header = entry.header.clone();
        header.set_size(entry.data.len() as u64);
        builder.append_data(&mut header, &entry.path, entry.data.as_slice())?;
    }
    let mut gz = builder.into_inner()?;
    gz.flush()?;
    gz.finish()
}
