//! A profile package shaped as the published GSMA TS.48 test profiles are, written byte by byte
//! from the TCA "eUICC Profile Package: Interoperable Format" structure, not with the crate's
//! encoder: a ProfileHeader whose `iccid` holds the digits in order (`89 49 44 …`), an MF element
//! whose EF.ICCID holds them swapped (`98 94 44 …`), a USIM element, and the End element.

/// DER with a definite length.
pub fn der(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match value.len() {
        n @ 0..=127 => out.push(n as u8),
        n @ 128..=255 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

fn nibbles(iccid: &str) -> Vec<u8> {
    let mut n: Vec<u8> = iccid.bytes().map(|b| b - b'0').collect();
    n.resize(20, 0xF);
    n
}

/// The ICCID as the ProfileHeader codes it: the digits in order, `F`-padded.
pub fn plain(iccid: &str) -> [u8; 10] {
    let n = nibbles(iccid);
    std::array::from_fn(|i| (n[2 * i] << 4) | n[2 * i + 1])
}

/// The ICCID as EF.ICCID (and SGP.22's `Iccid`) codes it: the two digits of each byte swapped.
pub fn swapped(iccid: &str) -> [u8; 10] {
    let n = nibbles(iccid);
    std::array::from_fn(|i| (n[2 * i + 1] << 4) | n[2 * i])
}

/// The package, naming `iccid` (its digits) in its header and EF.ICCID.
pub fn ts48_shaped(iccid: &str) -> Vec<u8> {
    let header = der(
        0xA0,
        &[
            der(0x80, &[2]),                 // major-version
            der(0x81, &[3]),                 // minor-version
            der(0x82, b"GSMA TS.48 shaped"), // profileType
            der(0x83, &plain(iccid)),        // iccid
            der(0xA5, &der(0x81, &[])),      // eUICC-Mandatory-services: usim
            der(0xA6, &[]),                  // eUICC-Mandatory-GFSTEList
        ]
        .concat(),
    );
    let file = |fid: [u8; 2]| der(0xA1, &der(0x83, &fid)); // fileDescriptor { fileID }
    let mf = der(
        0xB0,
        &[
            der(0xA0, &der(0x81, &[1])),                      // mf-header
            der(0x81, &[0x67, 0x81, 0x0F, 0x01, 0x02, 0x01]), // templateID 2.23.143.1.2.1
            der(0xA2, &file([0x3F, 0x00])),                   // mf
            der(
                0xA4,
                &[file([0x2F, 0xE2]), der(0x83, &swapped(iccid))].concat(),
            ), // ef-iccid
            der(0xA5, &file([0x2F, 0x00])),                   // ef-dir
            der(0xA6, &file([0x2F, 0x06])),                   // ef-arr
        ]
        .concat(),
    );
    // PE-USIM [19]: ADF.USIM from its template (2.23.143.1.2.4) with EF.IMSI 001010123456789
    // and the other mandatory files at the template's content.
    let usim = der(
        0xB3,
        &[
            der(0xA0, &der(0x81, &[2])),                      // usim-header
            der(0x81, &[0x67, 0x81, 0x0F, 0x01, 0x02, 0x04]), // templateID 2.23.143.1.2.4
            der(0xA2, &file([0x7F, 0xF1])),                   // adf-usim
            der(
                0xA3,
                &der(
                    0x83,
                    &[0x08, 0x09, 0x10, 0x10, 0x10, 0x32, 0x54, 0x76, 0x98],
                ),
            ), // ef-imsi
            der(0xA4, &[]),                                   // ef-arr
            der(0xA8, &[]),                                   // ef-ust
            der(0xAD, &[]),                                   // ef-spn
            der(0xAE, &[]),                                   // ef-est
            der(0xB2, &[]),                                   // ef-acc
            der(0xB6, &[]),                                   // ef-ecc
        ]
        .concat(),
    );
    let end = der(0xAA, &der(0xA0, &der(0x81, &[3])));
    [header, mf, usim, end].concat()
}
