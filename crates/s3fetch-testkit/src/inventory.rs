//! S3 Inventory reports of a bucket, written into a bucket as S3 writes them: gzip'd CSV data
//! files and a `manifest.json` naming them, so that a client's `--inventory` can be tested
//! against the same objects as its listing.
//!
//! Each row is `"Bucket","Key","Size","LastModifiedDate","ETag","StorageClass"`, fields
//! quoted, the key URL-encoded (form encoding: a space is `+`, every byte but
//! `A-Z a-z 0-9 - _ . *` is `%XX`), the ETag without quotes, as S3 Inventory's CSV has them.

use std::io::Write;

use flate2::write::GzEncoder;

use crate::state::Controls;
use crate::store::{ListEntry, ListQuery, Store, StoreResult};

/// The data files and manifest of an inventory of every object of `bucket` (`per_file` rows
/// a file at most), as (key, body) pairs to store in the destination bucket under `path`;
/// the manifest last.
pub(crate) fn build(
    store: &Store,
    controls: &Controls,
    bucket: &str,
    destination: &str,
    path: &str,
    per_file: usize,
) -> StoreResult<Vec<(String, Vec<u8>)>> {
    let mut rows = Vec::new();
    let query = ListQuery {
        prefix: "",
        delimiter: None,
        start_after: None,
        max_keys: usize::MAX,
    };
    store.list_visit(bucket, &query, |entry| {
        if let ListEntry::Object(key, meta) = entry {
            let class = controls
                .archive(bucket, key)
                .map_or("STANDARD", |a| a.class.as_str());
            rows.push(format!(
                "\"{bucket}\",\"{}\",\"{}\",\"{}\",\"{}\",\"{class}\"\n",
                form_encode(key),
                meta.size,
                meta.last_modified_iso(),
                meta.etag_hex_str(),
            ));
        }
    })?;
    let mut out = Vec::new();
    let mut files = Vec::new();
    for (n, chunk) in rows.chunks(per_file.max(1)).enumerate() {
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for row in chunk {
            gz.write_all(row.as_bytes()).expect("writing to memory");
        }
        let body = gz.finish().expect("writing to memory");
        let key = format!("{path}/data/{n:04}.csv.gz");
        files.push(format!(
            "{{\"key\":\"{key}\",\"size\":{},\"MD5checksum\":\"{}\"}}",
            body.len(),
            hex::encode(<md5::Md5 as md5::Digest>::digest(&body))
        ));
        out.push((key, body));
    }
    let manifest = format!(
        "{{\"sourceBucket\":\"{bucket}\",\"destinationBucket\":\"arn:aws:s3:::{destination}\",\"version\":\"2016-11-30\",\"creationTimestamp\":\"1700000000000\",\"fileFormat\":\"CSV\",\"fileSchema\":\"Bucket, Key, Size, LastModifiedDate, ETag, StorageClass\",\"files\":[{}]}}",
        files.join(",")
    );
    out.push((format!("{path}/manifest.json"), manifest.into_bytes()));
    Ok(out)
}

/// `application/x-www-form-urlencoded`, as S3 Inventory encodes keys.
fn form_encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_form_encoded() {
        assert_eq!(
            super::form_encode("a b/c+d%é.txt"),
            "a+b%2Fc%2Bd%25%C3%A9.txt"
        );
    }
}
