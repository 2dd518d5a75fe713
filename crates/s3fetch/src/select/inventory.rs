//! `inventory`: the objects of an S3 Inventory report instead of a listing.
//!
//! For a prefix of hundreds of millions of keys even a parallel listing takes minutes; S3
//! Inventory writes the bucket's object list daily as data files named by a `manifest.json`.
//! Reading those costs a few GETs and no LIST request at all. Only CSV reports are read
//! ([`parse_manifest`]); the manifest's `fileSchema` says which column is which ([`Columns`]).

use std::io::{BufRead, BufReader};

use flate2::read::MultiGzDecoder;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::object::ObjectInfo;
use crate::s3::Bucket;
use crate::uri::S3Uri;

/// What a manifest says: whose objects, in which files, in which columns.
#[derive(Debug)]
pub(crate) struct Manifest {
    pub source_bucket: String,
    /// Keys of the data files, in the manifest's bucket.
    pub files: Vec<String>,
    columns: Columns,
}

/// Where each field is in a row, from the manifest's `fileSchema`. `Bucket` and `Key` are
/// required; `Size`, `LastModifiedDate` and `ETag` are used when present (so size and time
/// limits and `sync` need no request); `IsLatest` and `IsDeleteMarker` skip rows of versioned
/// reports ([`read_rows`]).
#[derive(Debug, Clone, Copy)]
struct Columns {
    bucket: usize,
    key: usize,
    size: Option<usize>,
    last_modified: Option<usize>,
    etag: Option<usize>,
    is_latest: Option<usize>,
    is_delete_marker: Option<usize>,
}

/// Reads the manifest at `uri` through `bucket` (the manifest's bucket) and every object it
/// lists under `prefix` of bucket `source`, in the order of the report, those `want` takes.
///
/// A data file is read whole into memory, then decompressed as a stream; the wanted objects
/// are kept (as with `keys_from`), so memory grows with the selection, not with the report.
pub(crate) async fn objects(
    bucket: &Bucket,
    uri: &S3Uri,
    source: &str,
    prefix: &str,
    mut want: impl FnMut(&ObjectInfo) -> bool,
) -> Result<Vec<ObjectInfo>> {
    let bad = |reason: String| Error::Inventory {
        uri: uri.to_string(),
        reason,
    };
    let manifest = parse_manifest(&bucket.get_bytes(&uri.prefix).await?).map_err(bad)?;
    if manifest.source_bucket != source {
        return Err(bad(format!(
            "it lists bucket {:?}, not {source:?}",
            manifest.source_bucket
        )));
    }
    let mut objects = Vec::new();
    for file in &manifest.files {
        let gz = bucket.get_bytes(file).await?;
        let in_file = |reason: String| bad(format!("{file}: {reason}"));
        read_rows(&manifest, &gz, |object| {
            if object.key.starts_with(prefix) && want(&object) {
                objects.push(object);
            }
        })
        .map_err(in_file)?;
    }
    Ok(objects)
}

/// Parses a `manifest.json`.
///
/// CSV reports (gzip'd, as S3 writes them) are read; ORC and Parquet ones are refused with a
/// clear error (their readers would triple the crate's build; see docs/selection.md).
pub(crate) fn parse_manifest(json: &[u8]) -> std::result::Result<Manifest, String> {
    let manifest: Value =
        serde_json::from_slice(json).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let text = |field: &str| {
        manifest[field]
            .as_str()
            .ok_or_else(|| format!("the manifest has no {field:?}"))
    };
    let format = text("fileFormat")?;
    if !format.eq_ignore_ascii_case("CSV") {
        return Err(format!(
            "its fileFormat is {format}: only CSV inventories can be read (configure the inventory with the CSV format)"
        ));
    }
    let schema: Vec<&str> = text("fileSchema")?.split(',').map(str::trim).collect();
    let column = |name: &str| schema.iter().position(|c| c.eq_ignore_ascii_case(name));
    let columns = Columns {
        bucket: column("Bucket").ok_or("its fileSchema has no Bucket column")?,
        key: column("Key").ok_or("its fileSchema has no Key column")?,
        size: column("Size"),
        last_modified: column("LastModifiedDate"),
        etag: column("ETag"),
        is_latest: column("IsLatest"),
        is_delete_marker: column("IsDeleteMarker"),
    };
    let files = manifest["files"]
        .as_array()
        .ok_or("the manifest has no \"files\" list")?
        .iter()
        .map(|f| f["key"].as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or("a file of the manifest has no \"key\"")?;
    Ok(Manifest {
        source_bucket: text("sourceBucket")?.to_owned(),
        files,
        columns,
    })
}

/// Calls `each` with the object of every row of a gzip'd CSV data file.
///
/// Rows of versioned reports that are not the latest version or are delete markers are
/// skipped, and so are rows of another bucket than the URI's (rows outside its prefix are
/// left out by [`objects`]). Keys in CSV reports are URL-encoded (form encoding: `+` is a
/// space) and decoded here.
fn read_rows(
    manifest: &Manifest,
    gz: &[u8],
    mut each: impl FnMut(ObjectInfo),
) -> std::result::Result<(), String> {
    let c = manifest.columns;
    let reader = BufReader::new(MultiGzDecoder::new(gz));
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("not gzip'd text: {e}"))?;
        if line.is_empty() {
            continue;
        }
        let fields = csv_fields(&line).ok_or_else(|| format!("line {}: not CSV", n + 1))?;
        let field = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(String::as_str);
        let (Some(bucket), Some(key)) = (field(Some(c.bucket)), field(Some(c.key))) else {
            return Err(format!("line {}: fewer columns than the fileSchema", n + 1));
        };
        if bucket != manifest.source_bucket
            || field(c.is_latest).is_some_and(|v| v.eq_ignore_ascii_case("false"))
            || field(c.is_delete_marker).is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            continue;
        }
        let key = form_decode(key)
            .ok_or_else(|| format!("line {}: a key that is not URL-encoded UTF-8", n + 1))?;
        each(ObjectInfo {
            key,
            size: field(c.size).and_then(|s| s.parse().ok()).unwrap_or(0),
            etag: field(c.etag)
                .filter(|e| !e.is_empty())
                .map(|e| match e.starts_with('"') {
                    true => e.to_owned(),
                    false => format!("\"{e}\""),
                }),
            last_modified: field(c.last_modified).and_then(crate::timestamp::parse),
            archived: false,
        });
    }
    Ok(())
}

/// The fields of one CSV line: quoted (`"a","b ""c"""`) or bare, comma-separated.
fn csv_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
        }
        while let Some(&c) = chars.peek() {
            if c == ',' {
                break;
            }
            field.push(c);
            chars.next();
        }
        fields.push(field);
        match chars.next() {
            Some(',') => continue,
            None => return Some(fields),
            Some(_) => return None,
        }
    }
}

/// Decodes form encoding: `+` is a space, `%XX` a byte.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gz(text: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    const MANIFEST: &str = r#"{"sourceBucket":"src","destinationBucket":"arn:aws:s3:::inv","fileFormat":"CSV","fileSchema":"Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag","files":[{"key":"inv/data/1.csv.gz","size":1,"MD5checksum":"x"}]}"#;

    #[test]
    fn rows_follow_the_schema_and_skip_old_versions() {
        let manifest = parse_manifest(MANIFEST.as_bytes()).unwrap();
        assert_eq!(manifest.files, ["inv/data/1.csv.gz"]);
        let data = gz(concat!(
            "\"src\",\"a+b%2Fc%C3%A9.txt\",\"v1\",\"true\",\"false\",\"12\",\"2024-03-01T12:34:56.000Z\",\"abc\"\n",
            "\"src\",\"old\",\"v0\",\"false\",\"false\",\"3\",\"2024-03-01T12:34:56.000Z\",\"def\"\n",
            "\"src\",\"gone\",\"v2\",\"true\",\"true\",\"\",\"2024-03-01T12:34:56.000Z\",\"\"\n",
            "\"other\",\"x\",\"v\",\"true\",\"false\",\"1\",\"2024-03-01T12:34:56.000Z\",\"e\"\n",
        ));
        let mut rows = Vec::new();
        read_rows(&manifest, &data, |o| rows.push(o)).unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].key, "a b/cé.txt");
        assert_eq!(
            (rows[0].size, rows[0].etag.as_deref()),
            (12, Some("\"abc\""))
        );
        assert!(rows[0].last_modified.is_some());
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(
            csv_fields(r#""a","b ""c""",d,"#).unwrap(),
            ["a", "b \"c\"", "d", ""]
        );
        assert_eq!(csv_fields("").unwrap(), [""]);
        assert!(csv_fields(r#""open"#).is_none());
        assert_eq!(
            csv_fields(r#""a"x"#).unwrap(),
            ["ax"],
            "text after a closing quote is kept"
        );
    }

    #[test]
    fn what_cannot_be_read_says_why() {
        let manifest = |json: &str| parse_manifest(json.as_bytes()).unwrap_err();
        assert!(manifest("nope").contains("not JSON"));
        assert!(manifest(r#"{"fileFormat":"Parquet","fileSchema":"x"}"#).contains("only CSV"));
        assert!(manifest(r#"{"fileFormat":"CSV","fileSchema":"Key, Size"}"#)
            .contains("no Bucket column"));
        let m = parse_manifest(MANIFEST.as_bytes()).unwrap();
        let err = read_rows(&m, b"not gzip", |_| ()).unwrap_err();
        assert!(err.contains("gzip"), "{err}");
        let err = read_rows(&m, &gz("\"src\"\n"), |_| ()).unwrap_err();
        assert!(err.contains("fewer columns"), "{err}");
    }
}
