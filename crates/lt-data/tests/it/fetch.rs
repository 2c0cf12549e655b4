//! `lt-data fetch` against a tiny HTTP server on 127.0.0.1 serving an archive made here.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use lt_data::NoProgress;
use lt_data::fetch::{ExtractLimits, extract, fetch, md5_file};
use md5::Digest;

/// Serve `body` at any path; honour `Range: bytes=N-`. Returns the base URL and the log of
/// Range headers seen (None for plain requests).
fn serve(body: Vec<u8>) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut range = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("range: bytes=") {
                    range = Some(v.trim().trim_end_matches('-').to_string());
                }
            }
            log2.lock().unwrap().push(range.clone());
            let start: usize = range.as_deref().map_or(0, |r| r.parse().unwrap());
            let resp = if start >= body.len() && range.is_some() {
                b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            } else {
                let part = &body[start..];
                let mut head = if range.is_some() {
                    format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\n",
                        body.len() - 1,
                        body.len()
                    )
                } else {
                    "HTTP/1.1 200 OK\r\n".to_string()
                };
                head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", part.len()));
                let mut r = head.into_bytes();
                r.extend_from_slice(part);
                r
            };
            let _ = stream.write_all(&resp);
        }
    });
    (format!("http://{addr}"), log)
}

/// A .tar.gz in memory from (path, data) entries; paths are written raw into the header so
/// that unsafe ones (`..`, absolute) can be made.
fn targz(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (path, data, kind) in entries {
        let mut h = tar::Header::new_old();
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        if kind.is_symlink() {
            h.set_link_name("/etc/passwd").unwrap();
            h.set_size(0);
        } else {
            h.set_size(data.len() as u64);
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(md5::Md5::digest(b))
}

fn cifar_archive() -> Vec<u8> {
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 1..=5 {
        let recs = crate::helpers::records(4, i, 10);
        let mut bytes = Vec::new();
        for (l, img) in recs {
            bytes.push(l);
            bytes.extend(img);
        }
        entries.push((format!("cifar-10-batches-bin/data_batch_{i}.bin"), bytes));
    }
    entries.push(("cifar-10-batches-bin/test_batch.bin".into(), vec![3; 3073 * 2]));
    let e: Vec<(&str, &[u8], tar::EntryType)> =
        entries.iter().map(|(p, d)| (p.as_str(), d.as_slice(), tar::EntryType::Regular)).collect();
    targz(&e)
}

#[test]
fn cli_fetch_downloads_verifies_extracts_and_builds() {
    let archive = cifar_archive();
    let (base, log) = serve(archive.clone());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let url = format!("{base}/cifar-10-binary.tar.gz");
    let out = Command::new(env!("CARGO_BIN_EXE_lt-data"))
        .args(["fetch", "cifar10", "--dir", dir.to_str().unwrap(), "--url", &url, "--md5", &md5_hex(&archive)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(dir.join("cifar-10-binary.tar.gz")).unwrap(), archive);
    assert!(dir.join("cifar-10-batches-bin/data_batch_5.bin").exists());
    assert_eq!(log.lock().unwrap().as_slice(), [None]);
    let d = lt_data::source::cifar::load_cifar10(&dir.join("cifar-10-batches-bin"), &NoProgress).unwrap();
    assert_eq!(d.train.len(), 20);
    // Fetching again keeps the verified archive (no download) and re-extracts.
    fetch(&url, &md5_hex(&archive), &dir, &ExtractLimits::default(), &NoProgress).unwrap();
    assert_eq!(log.lock().unwrap().len(), 1);
    // Without --md5 the official MD5 applies, and this archive does not match it.
    std::fs::remove_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lt-data"))
        .args(["fetch", "cifar10", "--dir", dir.to_str().unwrap(), "--url", &url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("does not match the expected c32a1d4ab5d03f1284b67883e8d87530"),
        "{err}"
    );
    assert!(!dir.join("cifar-10-binary.tar.gz").exists() && !dir.join("cifar-10-binary.tar.gz.part").exists());
}

#[test]
fn partial_download_resumes_with_a_range_request() {
    let archive = cifar_archive();
    let (base, log) = serve(archive.clone());
    let tmp = tempfile::tempdir().unwrap();
    let half = archive.len() / 2;
    std::fs::write(tmp.path().join("a.tar.gz.part"), &archive[..half]).unwrap();
    fetch(&format!("{base}/a.tar.gz"), &md5_hex(&archive), tmp.path(), &ExtractLimits::default(), &NoProgress).unwrap();
    assert_eq!(log.lock().unwrap().as_slice(), [Some(half.to_string())]);
    assert_eq!(md5_file(&tmp.path().join("a.tar.gz")).unwrap(), md5_hex(&archive));
    // A complete .part: the server answers 416 and the file is verified as is.
    std::fs::rename(tmp.path().join("a.tar.gz"), tmp.path().join("b.tar.gz.part")).unwrap();
    fetch(&format!("{base}/b.tar.gz"), &md5_hex(&archive), tmp.path(), &ExtractLimits::default(), &NoProgress).unwrap();
    assert_eq!(log.lock().unwrap().last().unwrap(), &Some(archive.len().to_string()));
    assert!(tmp.path().join("b.tar.gz").exists());
}

#[test]
fn unsafe_archives_are_refused_and_nothing_escapes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    let cases: [(&str, tar::EntryType, &str); 3] = [
        ("../evil.txt", tar::EntryType::Regular, "contains `..`"),
        ("/tmp/lt-data-evil-abs.txt", tar::EntryType::Regular, "absolute path"),
        ("x/link", tar::EntryType::Symlink, "links are not extracted"),
    ];
    for (path, kind, why) in cases {
        let a = targz(&[("x/ok.txt", b"fine", tar::EntryType::Regular), (path, b"evil", kind)]);
        let f = tmp.path().join("a.tar.gz");
        std::fs::write(&f, a).unwrap();
        let e = extract(&f, &dir, &ExtractLimits::default(), &NoProgress).unwrap_err().to_string();
        assert!(e.contains(path) && e.contains(why), "{e}");
        assert!(!tmp.path().join("evil.txt").exists());
        assert!(!Path::new("/tmp/lt-data-evil-abs.txt").exists());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing extracted, no staging left");
    }
    // Garbage is an error naming the archive.
    let f = tmp.path().join("junk.tar.gz");
    std::fs::write(&f, b"not gzip at all").unwrap();
    let e = extract(&f, &dir, &ExtractLimits::default(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("junk.tar.gz") && e.contains("not a valid .tar.gz"), "{e}");
}

#[test]
fn fetch_never_replaces_what_it_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    // A user's directory that shares the archive's top-level name.
    let mine = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    let f = tmp.path().join("a.tar.gz");
    std::fs::write(&f, cifar_archive()).unwrap();
    let e = extract(&f, &dir, &ExtractLimits::default(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("cifar-10-batches-bin") && e.contains("refusing to replace"), "{e}");
    assert_eq!(std::fs::read_to_string(mine.join("notes.txt")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no staging left");
    // What fetch extracted itself is replaced by the next fetch.
    std::fs::remove_dir_all(&mine).unwrap();
    extract(&f, &dir, &ExtractLimits::default(), &NoProgress).unwrap();
    std::fs::write(mine.join("data_batch_1.bin"), b"corrupted").unwrap();
    extract(&f, &dir, &ExtractLimits::default(), &NoProgress).unwrap();
    assert_eq!(std::fs::metadata(mine.join("data_batch_1.bin")).unwrap().len(), 3073 * 4);
    // A file at the archive's name that does not match the MD5 was not downloaded by lt-data:
    // it is reported, not deleted.
    let archive = dir.join("a.tar.gz");
    std::fs::write(&archive, b"someone else's file").unwrap();
    let e =
        fetch("http://127.0.0.1:9/a.tar.gz", &md5_hex(&cifar_archive()), &dir, &ExtractLimits::default(), &NoProgress)
            .unwrap_err()
            .to_string();
    assert!(e.contains("does not match"), "{e}");
    assert_eq!(std::fs::read(&archive).unwrap(), b"someone else's file");
}

#[test]
fn archive_expansion_and_empty_archives_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    // 1 MiB of zeros compresses to about a kilobyte: a bomb in miniature.
    let zeros = vec![0u8; 1 << 20];
    let f = tmp.path().join("bomb.tar.gz");
    std::fs::write(&f, targz(&[("x/zeros.bin", zeros.as_slice(), tar::EntryType::Regular)])).unwrap();
    assert!(std::fs::metadata(&f).unwrap().len() < 100_000);
    let limits = ExtractLimits { max_bytes: 100_000, ..Default::default() };
    let e = extract(&f, &dir, &limits, &NoProgress).unwrap_err().to_string();
    assert!(
        e.contains("bomb.tar.gz") && e.contains("more than 100000 bytes") && e.contains("--max-extract-bytes"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing extracted, no staging left");
    let limits = ExtractLimits { max_entries: 1, ..Default::default() };
    let two = targz(&[("x/a", b"1", tar::EntryType::Regular), ("x/b", b"2", tar::EntryType::Regular)]);
    std::fs::write(&f, two).unwrap();
    assert!(extract(&f, &dir, &limits, &NoProgress).unwrap_err().to_string().contains("more than 1 entries"));
    // An empty archive is no data set.
    std::fs::write(&f, targz(&[])).unwrap();
    let e = extract(&f, &dir, &ExtractLimits::default(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("holds no files"), "{e}");
}
