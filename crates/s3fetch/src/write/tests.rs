//! Unit tests of the download directory and its temporary files.

use super::*;
use bytes::Bytes;
use std::fs::OpenOptions;

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn temp_file_is_removed_unless_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("x");
    let dir = DownloadDir::open(tmp.path(), &Tuning::default()).unwrap();
    let t = dir.temp_file("k", &dest).unwrap();
    t.write_chunks_at("k", &[Bytes::from_static(b"partial")], 0)
        .unwrap();
    drop(t);
    assert!(entries(tmp.path()).is_empty());
    write_whole(
        &dir,
        "k",
        Path::new("x"),
        &[&b"who"[..], &b"le"[..]],
        &Stamp::default(),
    )
    .unwrap();
    assert_eq!(entries(tmp.path()), ["x"]);
    assert_eq!(fs::read(&dest).unwrap(), b"whole");
}

#[test]
fn temp_name_fits_for_long_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("n".repeat(250));
    let dir = DownloadDir::open(tmp.path(), &Tuning::default()).unwrap();
    let t = dir.temp_file("k", &dest).unwrap();
    assert!(t.path.file_name().unwrap().len() < 64);
    drop(t);
    write_whole(
        &dir,
        "k",
        Path::new(&"n".repeat(250)),
        &[b"x"],
        &Stamp::default(),
    )
    .unwrap();
    assert_eq!(fs::read(&dest).unwrap(), b"x");
}

#[test]
fn refuses_symlinked_directories_and_files_in_the_way() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), tmp.path().join("link")).unwrap();
    fs::write(tmp.path().join("file"), b"").unwrap();
    let dir = DownloadDir::open(tmp.path(), &Tuning::default()).unwrap();
    let err = dir.prepare("link/x", Path::new("link/x")).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    let err = dir.prepare("file/x", Path::new("file/x")).unwrap_err();
    let text = crate::error_chain(&err);
    assert!(text.contains("a file is in the way"), "{text}");
    let dest = dir.prepare("a/b/c", Path::new("a/b/c")).unwrap();
    assert_eq!(dest, dir.root().join("a/b/c"));
    assert!(dir.root().join("a/b").is_dir());
    assert!(entries(outside.path()).is_empty());
}

#[test]
fn parts_land_at_their_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("p");
    let t = DownloadDir::open(tmp.path(), &Tuning::default())
        .unwrap()
        .temp_file("k", &dest)
        .unwrap();
    t.set_len("k", 6).unwrap();
    t.write_chunks_at("k", &[Bytes::from_static(b"def")], 3)
        .unwrap();
    t.write_chunks_at(
        "k",
        &[Bytes::from_static(b"a"), Bytes::from_static(b"bc")],
        0,
    )
    .unwrap();
    t.commit("k", &Stamp::default()).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), b"abcdef");
}

#[test]
fn reading_back_in_slices_hashes_the_whole_file() {
    use crate::checksum::Expected;
    let tmp = tempfile::tempdir().unwrap();
    let dir = DownloadDir::open(tmp.path(), &Tuning::default()).unwrap();
    let t = dir.temp_file("k", &tmp.path().join("r")).unwrap();
    let body: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i * 7 + i / 1000) as u8)
        .collect();
    t.write_chunks_at("k", &[Bytes::from(body.clone())], 0)
        .unwrap();
    let md5 = |bytes: &[u8]| {
        use md5::Digest as _;
        Expected::Md5(md5::Md5::digest(bytes).into())
    };
    let expected = md5(&body);
    let mut hasher = expected.hasher();
    for start in (0..body.len() as u64).step_by(1_100_000) {
        let len = 1_100_000.min(body.len() as u64 - start);
        hasher = t.read_back("k", hasher, start, len).unwrap();
    }
    assert_eq!(hasher.verify(expected), Ok(()));
    // A read past the end is an error, not a short hash.
    let past = t.read_back("k", expected.hasher(), 2_999_999, 2);
    assert!(matches!(past, Err(e) if e.to_string().contains("reading back")));
    assert!(md5(b"other").hasher().verify(expected).is_err());
}

#[test]
fn chunks_are_written_back_to_back_past_the_iov_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("c");
    let t = DownloadDir::open(tmp.path(), &Tuning::default())
        .unwrap()
        .temp_file("k", &dest)
        .unwrap();
    // More chunks than one pwritev takes, empty ones among them.
    let chunks: Vec<Bytes> = (0..3000u32)
        .map(|i| match i % 7 {
            0 => Bytes::new(),
            _ => Bytes::from(vec![i as u8; (i % 13) as usize + 1]),
        })
        .collect();
    t.write_chunks_at("k", &[Bytes::new()], 0).unwrap();
    t.write_chunks_at("k", &chunks, 5).unwrap();
    t.commit("k", &Stamp::default()).unwrap();
    let want: Vec<u8> = [0u8; 5]
        .into_iter()
        .chain(chunks.iter().flat_map(|c| c.iter().copied()))
        .collect();
    assert_eq!(fs::read(&dest).unwrap(), want);
}

#[test]
fn download_dir_must_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let err = DownloadDir::open(&tmp.path().join("nope"), &Tuning::default()).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    fs::write(tmp.path().join("f"), b"").unwrap();
    let err = DownloadDir::open(&tmp.path().join("f"), &Tuning::default()).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

/// Writes `bytes` to `dest` as a download would finish it, with `etag` recorded in `index`.
fn finish(dest: &Path, bytes: &[u8], etag: &str, index: &EtagIndex) {
    fs::write(dest, bytes).unwrap();
    let stamp = Stamp {
        mtime: None,
        etag: Some(etag.to_owned()),
    };
    stamp
        .apply(&File::open(dest).unwrap(), dest, index)
        .unwrap();
}

#[test]
fn etags_go_to_the_index_without_extended_attributes() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let index = EtagIndex::new(root.path(), true);
    finish(&a, b"alpha", "\"1\"", &index);
    finish(&b, b"bravo", "\"2\"", &index);
    finish(&a, b"alpha", "\"3\"", &index); // downloaded again: the last line wins
    let lines = fs::read_to_string(root.path().join(stamp::ETAG_INDEX)).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");

    let next_run = EtagIndex::new(root.path(), true);
    assert_eq!(next_run.recorded(&a).as_deref(), Some("\"3\""));
    assert_eq!(next_run.recorded(&b).as_deref(), Some("\"2\""));
    assert_eq!(next_run.recorded(&root.path().join("c")), None);

    // Replaced by other means (a copy renamed over it): the record no longer counts.
    let copy = root.path().join("b-copy");
    fs::copy(&b, &copy).unwrap();
    fs::rename(&copy, &b).unwrap();
    assert_eq!(EtagIndex::new(root.path(), true).recorded(&b), None);
}

#[test]
fn a_torn_line_is_skipped_and_stale_lines_are_dropped() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    let index = EtagIndex::new(root.path(), true);
    for n in 0..1500 {
        finish(&a, b"alpha", &format!("\"{n}\""), &index);
    }
    let path = root.path().join(stamp::ETAG_INDEX);
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(br#"{"path":"a","et"#).unwrap(); // a killed run's last line
    drop(file);

    let next_run = EtagIndex::new(root.path(), true);
    assert_eq!(next_run.recorded(&a).as_deref(), Some("\"1499\""));
    let lines = fs::read_to_string(&path).unwrap();
    assert_eq!(lines.lines().count(), 1, "rewritten with one line per file");
    assert_eq!(
        EtagIndex::new(root.path(), true).recorded(&a).as_deref(),
        Some("\"1499\"")
    );
}

#[cfg(target_os = "linux")]
#[test]
fn etags_go_to_an_extended_attribute_where_there_is_one() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    finish(&a, b"alpha", "\"1\"", &EtagIndex::new(root.path(), false));
    if rustix::fs::lgetxattr(&a, stamp::ETAG_XATTR, &mut [0u8; 64][..]).is_err() {
        return; // this file system has none: the index test covers it
    }
    assert!(!root.path().join(stamp::ETAG_INDEX).exists());
    assert_eq!(
        EtagIndex::new(root.path(), false).recorded(&a).as_deref(),
        Some("\"1\"")
    );
}
