//! Reads structured values from fuzz input, one after the other.
//!
//! Running out of input is not an error: every read past the end yields zeros, so any byte
//! string decodes to something, and an input that ends early means "the usual value" for the
//! rest (the decoders choose encodings in which zero is the ordinary case).

/// A cursor over fuzz input.
#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    rest: &'a [u8],
}

impl<'a> ByteReader<'a> {
    pub fn new(data: &'a [u8]) -> ByteReader<'a> {
        ByteReader { rest: data }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&byte, rest)) => {
                self.rest = rest;
                byte
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn i8(&mut self) -> i8 {
        self.u8() as i8
    }

    pub fn i16(&mut self) -> i16 {
        self.u16() as i16
    }

    /// Up to `len` bytes (fewer when the input ends first).
    pub fn bytes(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.rest.split_at(len.min(self.rest.len()));
        self.rest = rest;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_order_then_zeros() {
        let mut reader = ByteReader::new(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(reader.u8(), 1);
        assert_eq!(reader.u16(), 0x0203);
        assert_eq!(reader.bytes(2), &[4, 5]);
        assert_eq!(reader.i8(), 6);
        assert!(!reader.is_empty());
        assert_eq!(reader.u32(), 0x0700_0000);
        assert!(reader.is_empty());
        assert_eq!(reader.bytes(3), &[] as &[u8]);
        assert_eq!(reader.i16(), 0);
    }
}
