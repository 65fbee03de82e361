//! BER-TLV as SGP.22 uses it (Annex H is DER): a reader that keeps the raw bytes of every data
//! object, so signatures are verified over exactly what was received (SGP.22 §2.6.7.2: "the
//! signature SHALL be computed for the data object after encoding"), and a writer that emits
//! minimal DER lengths (an LPA may parse and re-pack signed objects; a longer length form than
//! necessary would change the signed bytes).
//!
//! Reading never recurses on its own: [`Tlv::children`] parses one level, so hostile nesting
//! costs no stack. Tags are kept as the integer of their bytes (`0xBF36`, `0x5F37`, `0x80`);
//! SGP.22 uses tags of at most three bytes. Lengths up to four bytes are read (`84 xx xx xx
//! xx`); the indefinite form is refused.

use std::fmt;

/// Why bytes are not a data object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    /// The input ended inside a tag, length or value.
    #[error("the data ends inside a data object")]
    Truncated,
    /// A tag of more than three bytes.
    #[error("a tag longer than three bytes")]
    TagTooLong,
    /// The indefinite length form (`80`), which DER forbids.
    #[error("an indefinite length (DER forbids it)")]
    IndefiniteLength,
    /// A length field of more than four bytes.
    #[error("a length field longer than four bytes")]
    LengthTooLong,
    /// Bytes after the data object where none may follow.
    #[error("{0} bytes after the data object")]
    Trailing(usize),
    /// Expected one tag, found another.
    #[error("expected tag {expected:X}, found {found:X}")]
    UnexpectedTag {
        /// The tag wanted.
        expected: u32,
        /// The tag present.
        found: u32,
    },
    /// A mandatory component is missing.
    #[error("the data object {parent:X} has no component {missing:X}")]
    Missing {
        /// The constructed object.
        parent: u32,
        /// The tag not found in it.
        missing: u32,
    },
    /// A value of the wrong size or content.
    #[error("{0}")]
    Invalid(String),
}

/// One data object as received: its tag, its value, and the whole encoding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag bytes as an integer (`0xBF36`).
    pub tag: u32,
    /// The contents.
    pub value: &'a [u8],
    /// Tag, length and value exactly as received: what signatures cover.
    pub raw: &'a [u8],
}

impl fmt::Debug for Tlv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tlv({:X}, {} bytes)", self.tag, self.value.len())
    }
}

/// Reads the tag at the start of `input`: the tag and the number of its bytes.
fn read_tag(input: &[u8]) -> Result<(u32, usize), TlvError> {
    let first = *input.first().ok_or(TlvError::Truncated)?;
    if first & 0x1F != 0x1F {
        return Ok((u32::from(first), 1));
    }
    // Subsequent bytes while b8 is set; SGP.22 tags are at most three bytes.
    let mut tag = u32::from(first);
    for i in 1..3 {
        let b = *input.get(i).ok_or(TlvError::Truncated)?;
        tag = (tag << 8) | u32::from(b);
        if b & 0x80 == 0 {
            return Ok((tag, i + 1));
        }
    }
    Err(TlvError::TagTooLong)
}

/// Reads the length at the start of `input`: the length and the number of its bytes.
fn read_length(input: &[u8]) -> Result<(usize, usize), TlvError> {
    let first = *input.first().ok_or(TlvError::Truncated)?;
    if first < 0x80 {
        return Ok((usize::from(first), 1));
    }
    let n = usize::from(first & 0x7F);
    if n == 0 {
        return Err(TlvError::IndefiniteLength);
    }
    if n > 4 {
        return Err(TlvError::LengthTooLong);
    }
    let bytes = input.get(1..1 + n).ok_or(TlvError::Truncated)?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Ok((len, 1 + n))
}

/// The number of bytes the tag and length of a data object take, and the value length, from
/// the start of `input` (which may hold only the beginning of the object: BPP pieces arrive
/// tag and length first).
pub fn read_header(input: &[u8]) -> Result<(u32, usize, usize), TlvError> {
    let (tag, tag_len) = read_tag(input)?;
    let (len, len_len) = read_length(&input[tag_len..])?;
    Ok((tag, tag_len + len_len, len))
}

/// The first data object of `input`, and what follows it.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (tag, header, len) = read_header(input)?;
    let end = header.checked_add(len).ok_or(TlvError::Truncated)?;
    if end > input.len() {
        return Err(TlvError::Truncated);
    }
    let tlv = Tlv {
        tag,
        value: &input[header..end],
        raw: &input[..end],
    };
    Ok((tlv, &input[end..]))
}

/// `input` as exactly one data object.
pub fn read_exact(input: &[u8]) -> Result<Tlv<'_>, TlvError> {
    let (tlv, rest) = read(input)?;
    if !rest.is_empty() {
        return Err(TlvError::Trailing(rest.len()));
    }
    Ok(tlv)
}

/// `input` as exactly one data object with tag `tag`.
pub fn read_tagged(input: &[u8], tag: u32) -> Result<Tlv<'_>, TlvError> {
    let tlv = read_exact(input)?;
    tlv.expect(tag)
}

/// Every data object of `input`, in order.
pub fn read_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = read(input)?;
        out.push(tlv);
        input = rest;
    }
    Ok(out)
}

impl<'a> Tlv<'a> {
    /// Whether the tag says the value is itself data objects.
    pub fn is_constructed(&self) -> bool {
        let first = if self.tag > 0xFFFF {
            self.tag >> 16
        } else if self.tag > 0xFF {
            self.tag >> 8
        } else {
            self.tag
        };
        first & 0x20 != 0
    }

    /// The data objects of the value (one level).
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, TlvError> {
        read_all(self.value)
    }

    /// The first child with `tag`, if the value parses and has one.
    pub fn child(&self, tag: u32) -> Result<Option<Tlv<'a>>, TlvError> {
        Ok(self.children()?.into_iter().find(|c| c.tag == tag))
    }

    /// The first child with `tag`, which must be there.
    pub fn required(&self, tag: u32) -> Result<Tlv<'a>, TlvError> {
        self.child(tag)?.ok_or(TlvError::Missing {
            parent: self.tag,
            missing: tag,
        })
    }

    /// This object, if its tag is `tag`.
    pub fn expect(self, tag: u32) -> Result<Tlv<'a>, TlvError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(TlvError::UnexpectedTag {
                expected: tag,
                found: self.tag,
            })
        }
    }

    /// The value as a non-negative INTEGER that fits 64 bits.
    pub fn uint(&self) -> Result<u64, TlvError> {
        if self.value.is_empty() || self.value.len() > 9 || self.value[0] & 0x80 != 0 {
            return Err(TlvError::Invalid(format!(
                "tag {:X}: not a non-negative INTEGER of at most 64 bits",
                self.tag
            )));
        }
        let digits = if self.value.len() == 9 {
            if self.value[0] != 0 {
                return Err(TlvError::Invalid(format!(
                    "tag {:X}: INTEGER above 64 bits",
                    self.tag
                )));
            }
            &self.value[1..]
        } else {
            self.value
        };
        Ok(digits
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// The value, which must be `n` bytes long.
    pub fn fixed<const N: usize>(&self) -> Result<[u8; N], TlvError> {
        self.value.try_into().map_err(|_| {
            TlvError::Invalid(format!(
                "tag {:X}: {} bytes, not {N}",
                self.tag,
                self.value.len()
            ))
        })
    }
}

/// Appends the DER length `len` (minimal form).
pub fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = (len as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends the tag bytes of `tag`.
pub fn push_tag(out: &mut Vec<u8>, tag: u32) {
    if tag > 0xFFFF {
        out.push((tag >> 16) as u8);
    }
    if tag > 0xFF {
        out.push((tag >> 8) as u8);
    }
    out.push(tag as u8);
}

/// Appends the data object `tag` with `value`.
pub fn push(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    push_tag(out, tag);
    push_length(out, value.len());
    out.extend_from_slice(value);
}

/// The data object `tag` with `value`.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    push(&mut out, tag, value);
    out
}

/// The constructed data object `tag` holding `parts` (each a complete data object).
pub fn constructed(tag: u32, parts: &[&[u8]]) -> Vec<u8> {
    let len = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 6);
    push_tag(&mut out, tag);
    push_length(&mut out, len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// Just the tag and length of an object whose value has `len` bytes.
pub fn header(tag: u32, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(6);
    push_tag(&mut out, tag);
    push_length(&mut out, len);
    out
}

/// A non-negative INTEGER's minimal DER contents.
pub fn uint_value(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut out = Vec::with_capacity(9);
    if bytes[skip] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&bytes[skip..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tags_and_lengths() {
        let bpp_start = [0xBF, 0x36, 0x83, 0x01, 0x00, 0x00];
        assert_eq!(read_header(&bpp_start).unwrap(), (0xBF36, 6, 65536));
        assert_eq!(read_header(&[0x5F, 0x37, 0x40]).unwrap(), (0x5F37, 3, 64));
        assert_eq!(read_header(&[0x80, 0x80]), Err(TlvError::IndefiniteLength));
        assert_eq!(
            read_header(&[0xBF, 0xFF, 0xFF, 0x01]),
            Err(TlvError::TagTooLong)
        );
        assert_eq!(read(&[0x04, 0x05, 1, 2]).unwrap_err(), TlvError::Truncated);
        let mut out = Vec::new();
        push_length(&mut out, 0x7F);
        push_length(&mut out, 0x80);
        push_length(&mut out, 0x3F8);
        push_length(&mut out, 0x10000);
        assert_eq!(
            out,
            [0x7F, 0x81, 0x80, 0x82, 0x03, 0xF8, 0x83, 0x01, 0x00, 0x00]
        );
        assert_eq!(uint_value(0), [0]);
        assert_eq!(uint_value(128), [0, 0x80]);
        assert_eq!(uint_value(0x0102), [1, 2]);
    }

    #[test]
    fn raw_bytes_are_kept_even_with_a_long_length_form() {
        // 81 03 instead of 03: not DER, but what was received is what is signed.
        let data = [0x30, 0x81, 0x03, 0x80, 0x01, 0x07];
        let tlv = read_exact(&data).unwrap();
        assert_eq!(tlv.raw, &data);
        let inner = tlv.required(0x80).unwrap();
        assert_eq!(inner.uint().unwrap(), 7);
        assert!(tlv.is_constructed());
        assert!(!inner.is_constructed());
    }

    proptest! {
        /// Reading never panics; whatever reads is written again by `encode` to the same tag
        /// and value, byte for byte when its length was minimal (DER), and the objects cover
        /// the input in order.
        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(objects) = read_all(&data) {
                let mut at = 0;
                for o in &objects {
                    let again = encode(o.tag, o.value);
                    let back = read_exact(&again).unwrap();
                    prop_assert_eq!((back.tag, back.value), (o.tag, o.value));
                    if o.raw.len() == again.len() {
                        prop_assert_eq!(&again[..], o.raw);
                    }
                    prop_assert_eq!(&data[at..at + o.raw.len()], o.raw);
                    at += o.raw.len();
                    let _ = o.children();
                    let _ = o.uint();
                }
                prop_assert_eq!(at, data.len());
            }
        }

        /// Objects written one after another, with tags of one to three bytes and short and
        /// long lengths, read back as themselves.
        #[test]
        fn sequences_read_back(objects in proptest::collection::vec(
            (prop_oneof![Just(0x04u32), Just(0x86), Just(0xA3), Just(0x5F37), Just(0xBF36),
                         Just(0x9F_8101), Just(0xBF_8120)],
             proptest::collection::vec(any::<u8>(), 0..600)),
            0..6,
        )) {
            let data: Vec<u8> = objects.iter().flat_map(|(tag, value)| encode(*tag, value)).collect();
            let read = read_all(&data).unwrap();
            prop_assert_eq!(read.len(), objects.len());
            for (o, (tag, value)) in read.iter().zip(&objects) {
                prop_assert_eq!(o.tag, *tag);
                prop_assert_eq!(o.value, &value[..]);
            }
        }

        /// What is written reads back.
        #[test]
        fn round_trip(tag in prop_oneof![Just(0x80u32), Just(0x30), Just(0x5F37), Just(0xBF36)],
                      value in proptest::collection::vec(any::<u8>(), 0..70_000)) {
            let encoded = encode(tag, &value);
            let tlv = read_exact(&encoded).unwrap();
            prop_assert_eq!(tlv.tag, tag);
            prop_assert_eq!(tlv.value, &value[..]);
        }
    }
}
