//! A set tag: a name some image sets carry.

use serde::Serialize;
use utoipa::ToSchema;

/// A tag with the readable sets that carry it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetTag {
    pub id: i64,
    pub name: String,
    pub imagesets: Vec<i64>,
}

/// A tag's id: the first 52 bits of the SHA-256 of its name with bit 52 set (so never 0, and
/// below 2^53, an integer JavaScript holds exactly), the same for everyone and at any time. Ids numbered in order of first use told a
/// team whether another had used a name before; a digest tells nothing anyone could not
/// compute from the name.
pub fn tag_id(name: &str) -> i64 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(name.as_bytes());
    let first = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    i64::try_from(first >> 12).expect("52 bits fit") | 1 << 52
}
