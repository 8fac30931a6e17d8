//! Builds `.crate` files in code, well-formed or deliberately not, so tests
//! can send every kind of bad upload without shipping binary fixtures.

use std::io::Write;

/// Builds a gzip-compressed tar archive entry by entry.
pub struct TarballBuilder {
    inner: tar::Builder<Vec<u8>>,
    /// Bytes after the tar end-of-archive marker, inside the gzip stream.
    trailing: Vec<u8>,
}

impl Default for TarballBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarballBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        Self {
            inner: tar::Builder::new(Vec::new()),
            trailing: Vec::new(),
        }
    }

    /// A minimal valid crate: `Cargo.toml` and `src/lib.rs`.
    pub fn minimal(name: &str, version: &str) -> Self {
        let manifest =
            format!("[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n");
        Self::new()
            .file(&format!("{name}-{version}/Cargo.toml"), manifest.as_bytes())
            .file(&format!("{name}-{version}/src/lib.rs"), b"")
    }

    /// A regular file at `path`, written verbatim into the header, so paths
    /// with `..` or a leading `/` can be produced too.
    pub fn file(self, path: &str, contents: &[u8]) -> Self {
        self.entry(path, tar::EntryType::Regular, contents, None)
    }

    /// A directory entry.
    pub fn dir(self, path: &str) -> Self {
        self.entry(path, tar::EntryType::Directory, b"", None)
    }

    /// A symlink pointing at `target`.
    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(path, tar::EntryType::Symlink, b"", Some(target))
    }

    /// A hard link pointing at `target`.
    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.entry(path, tar::EntryType::Link, b"", Some(target))
    }

    /// A regular file preceded by a PAX header claiming `pax_size` bytes.
    pub fn file_with_pax_size(mut self, path: &str, contents: &[u8], pax_size: u64) -> Self {
        let size = pax_size.to_string();
        // Writing into a Vec cannot fail.
        let _ = self
            .inner
            .append_pax_extensions([("size", size.as_bytes())]);
        self.file(path, contents)
    }

    /// A regular file whose header name is `path` byte for byte, so names
    /// that are not UTF-8 can be produced.
    pub fn file_raw_name(self, path: &[u8], contents: &[u8]) -> Self {
        self.entry_bytes(path, tar::EntryType::Regular, contents, None)
    }

    /// A regular file named by a GNU long-name entry of exactly `path`,
    /// however long, as `cargo package` writes paths over 100 bytes.
    pub fn long_name_file(mut self, path: &[u8], contents: &[u8]) -> Self {
        let mut name = path.to_vec();
        name.push(0);
        let mut header = tar::Header::new_gnu();
        if let Some(gnu) = header.as_gnu_mut() {
            gnu.name[..13].copy_from_slice(b"././@LongLink");
        }
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(name.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let _ = self.inner.append(&header, name.as_slice());
        let short = &path[..path.len().min(100)];
        self.entry_bytes(short, tar::EntryType::Regular, contents, None)
    }

    /// A PAX extended header with these records, for the entry added next.
    pub fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        // Writing into a Vec cannot fail.
        let _ = self
            .inner
            .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)));
        self
    }

    /// Bytes written after the tar end-of-archive marker, inside the same
    /// gzip stream.
    pub fn after_end(mut self, bytes: &[u8]) -> Self {
        self.trailing.extend_from_slice(bytes);
        self
    }

    fn entry(self, path: &str, kind: tar::EntryType, contents: &[u8], link: Option<&str>) -> Self {
        self.entry_bytes(path.as_bytes(), kind, contents, link)
    }

    fn entry_bytes(
        mut self,
        path: &[u8],
        kind: tar::EntryType,
        contents: &[u8],
        link: Option<&str>,
    ) -> Self {
        let mut header = tar::Header::new_ustar();
        {
            let raw = header.as_old_mut();
            let bytes = path;
            let n = bytes.len().min(raw.name.len());
            raw.name[..n].copy_from_slice(&bytes[..n]);
            if let Some(link) = link {
                let link = link.as_bytes();
                let n = link.len().min(raw.linkname.len());
                raw.linkname[..n].copy_from_slice(&link[..n]);
            }
        }
        header.set_entry_type(kind);
        header.set_size(contents.len() as u64);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(0);
        header.set_cksum();
        // Writing into a Vec cannot fail.
        let _ = self.inner.append(&header, contents);
        self
    }

    /// The finished `.crate` bytes.
    pub fn build(self) -> Vec<u8> {
        let mut tar = self.inner.into_inner().unwrap_or_default();
        tar.extend_from_slice(&self.trailing);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(&tar);
        gz.finish().unwrap_or_default()
    }
}
