//! One spooled result on disk and how a damaged one is recognised.
//!
//! Layout: `[body length: u32 LE][CRC-32 of body: u32 LE]` then the body,
//! `[key length: u16 LE][key][value]`. The checksum is what tells a torn write
//! (the process or machine died mid-record) from a record.

use std::io::{self, Read};

/// Bytes before the body.
pub const HEADER_LEN: usize = 8;

/// Bodies longer than this are taken as damage, not data (a result is a few KiB).
pub const MAX_BODY: usize = 16 << 20;

/// One result read back from the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the spool: records are replayed in this order.
    pub seq: u64,
    /// Kafka key (the site name).
    pub key: Vec<u8>,
    /// Kafka value (the result as JSON).
    pub value: Vec<u8>,
}

/// What the next bytes of a segment hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole, intact record: key and value.
    Record(Vec<u8>, Vec<u8>),
    /// The segment ends cleanly here.
    End,
    /// The bytes here are not a whole record; why.
    Damaged(&'static str),
}

/// Appends the framed record to `out`.
pub fn encode(key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    // Site names are far below 64 KiB; a longer key is cut rather than corrupting the frame.
    let key = &key[..key.len().min(usize::from(u16::MAX))];
    let body_len = 2 + key.len() + value.len();
    let mut hasher = crc32fast::Hasher::new();
    let key_len = (key.len() as u16).to_le_bytes();
    hasher.update(&key_len);
    hasher.update(key);
    hasher.update(value);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.extend_from_slice(&key_len);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Framed size of a record.
#[cfg(test)]
fn framed_len(key: &[u8], value: &[u8]) -> u64 {
    (HEADER_LEN + 2 + key.len().min(usize::from(u16::MAX)) + value.len()) as u64
}

/// Reads the next frame; I/O errors are errors, damaged bytes are a [`Frame::Damaged`].
pub fn read_frame<R: Read>(r: &mut R) -> io::Result<(Frame, u64)> {
    let mut header = [0u8; HEADER_LEN];
    match read_full(r, &mut header)? {
        0 => return Ok((Frame::End, 0)),
        n if n < HEADER_LEN => return Ok((Frame::Damaged("truncated record header"), 0)),
        _ => {}
    }
    let body_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if !(2..=MAX_BODY).contains(&body_len) {
        return Ok((Frame::Damaged("implausible record length"), 0));
    }
    let mut body = vec![0u8; body_len];
    if read_full(r, &mut body)? < body_len {
        return Ok((Frame::Damaged("truncated record"), 0));
    }
    if crc32fast::hash(&body) != crc {
        return Ok((Frame::Damaged("checksum mismatch"), 0));
    }
    let key_len = usize::from(u16::from_le_bytes([body[0], body[1]]));
    if 2 + key_len > body_len {
        return Ok((Frame::Damaged("key longer than the record"), 0));
    }
    let value = body.split_off(2 + key_len);
    body.drain(..2);
    Ok((Frame::Record(body, value), (HEADER_LEN + body_len) as u64))
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn framed(key: &str, value: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode(key.as_bytes(), value.as_bytes(), &mut out);
        out
    }

    #[test]
    fn a_record_reads_back_and_then_the_end() {
        let mut bytes = framed("site-a", "{\"x\":1}");
        bytes.extend(framed("", "v"));
        assert_eq!(
            bytes.len() as u64,
            framed_len(b"site-a", b"{\"x\":1}") + framed_len(b"", b"v")
        );
        let mut r = bytes.as_slice();
        let (f, n) = read_frame(&mut r).unwrap();
        assert_eq!(f, Frame::Record(b"site-a".to_vec(), b"{\"x\":1}".to_vec()));
        assert_eq!(n, framed_len(b"site-a", b"{\"x\":1}"));
        assert_eq!(
            read_frame(&mut r).unwrap().0,
            Frame::Record(vec![], b"v".to_vec())
        );
        assert_eq!(read_frame(&mut r).unwrap().0, Frame::End);
    }

    #[test]
    fn every_cut_of_a_record_is_damage_not_a_record() {
        let bytes = framed("site", "{\"outcome\":\"up\"}");
        for cut in 1..bytes.len() {
            let (f, _) = read_frame(&mut &bytes[..cut]).unwrap();
            assert!(matches!(f, Frame::Damaged(_)), "cut at {cut}: {f:?}");
        }
    }

    #[test]
    fn a_flipped_bit_is_a_checksum_mismatch() {
        let mut bytes = framed("site", "{\"outcome\":\"up\"}");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        assert_eq!(
            read_frame(&mut bytes.as_slice()).unwrap().0,
            Frame::Damaged("checksum mismatch")
        );
    }
}
