//! The byte format of the structured fuzz inputs: a reader that pulls
//! choices, numbers and length-prefixed fields from the front of the input
//! (missing bytes read as zero, so every input is valid), and a writer
//! that builds the same format for the seed corpora.
//!
//! This plays the role of `arbitrary::Unstructured`; it is our own so the
//! corpus replay test, which compiles as an integration test of
//! `vigil-filter`, needs no dependency the filter does not already have.

/// Reads an input front to back.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }

    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    /// Little-endian, missing bytes are zero.
    fn uint(&mut self, width: usize) -> u64 {
        self.take(width)
            .iter()
            .enumerate()
            .fold(0u64, |acc, (i, b)| acc | (u64::from(*b) << (8 * i)))
    }

    pub fn u16(&mut self) -> u16 {
        self.uint(2) as u16
    }

    pub fn u32(&mut self) -> u32 {
        self.uint(4) as u32
    }

    pub fn u64(&mut self) -> u64 {
        self.uint(8)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// An index below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::from(self.u8()) % n
    }

    pub fn pick<'b, T>(&mut self, items: &'b [T]) -> &'b T {
        &items[self.below(items.len())]
    }

    /// A field: a 2-byte length, then that many bytes (fewer at the end).
    pub fn bytes(&mut self) -> &'a [u8] {
        let len = usize::from(self.u16());
        self.take(len)
    }

    /// A field as text (invalid UTF-8 replaced).
    pub fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

/// Builds inputs in the format `Input` reads (seed corpora).
#[derive(Default)]
pub struct Output {
    buf: Vec<u8>,
}

impl Output {
    pub fn new() -> Output {
        Output::default()
    }

    pub fn u8(mut self, v: u8) -> Output {
        self.buf.push(v);
        self
    }

    pub fn u16(mut self, v: u16) -> Output {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(mut self, v: u32) -> Output {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(mut self, v: u64) -> Output {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bool(self, v: bool) -> Output {
        self.u8(u8::from(v))
    }

    pub fn bytes(mut self, v: &[u8]) -> Output {
        let len = u16::try_from(v.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&v[..usize::from(len)]);
        self
    }

    pub fn text(self, v: &str) -> Output {
        self.bytes(v.as_bytes())
    }

    pub fn rest(mut self, v: &[u8]) -> Output {
        self.buf.extend_from_slice(v);
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree() {
        let data = Output::new()
            .u8(7)
            .u16(513)
            .u32(70_000)
            .u64(u64::MAX - 1)
            .bool(true)
            .text("héllo")
            .rest(b"tail")
            .finish();
        let mut input = Input::new(&data);
        assert_eq!(input.u8(), 7);
        assert_eq!(input.u16(), 513);
        assert_eq!(input.u32(), 70_000);
        assert_eq!(input.u64(), u64::MAX - 1);
        assert!(input.bool());
        assert_eq!(input.text(), "héllo");
        assert_eq!(input.rest(), b"tail");
        assert!(input.is_empty());
        assert_eq!(input.u64(), 0);
        assert_eq!(input.text(), "");
    }
}
