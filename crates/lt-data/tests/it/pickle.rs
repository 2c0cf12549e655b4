//! The safe pickle reader: CIFAR-10 python batches as python 2 wrote them (hand-assembled
//! here, opcode by opcode), as python 3 + numpy write them (protocol 4), and refusals.

use std::path::Path;

use lt_data::NoProgress;
use lt_data::source::pickle::{self, MAX_DEPTH, MAX_VALUES, Value, dict_get, load_cifar10_py};

use crate::fuzz::measure;
use crate::helpers::{Records, records, run_python};

/// Assemble a batch the way python 2's cPickle (protocol 2) wrote the CIFAR files.
pub fn py2_batch(recs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let labels: Vec<i32> = recs.iter().map(|r| i32::from(r.0)).collect();
    let images: Vec<&[u8]> = recs.iter().map(|r| &r.1[..]).collect();
    py2_batch_labels(&labels, &images)
}

/// [`py2_batch`] with any labels (BININT1 for 0..=255, BININT otherwise, as cPickle did).
pub fn py2_batch_labels(labels: &[i32], images: &[&[u8]]) -> Vec<u8> {
    let n = images.len();
    let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
    let short = |p: &mut Vec<u8>, s: &[u8]| {
        p.push(b'U');
        p.push(s.len() as u8);
        p.extend_from_slice(s);
    };
    short(&mut p, b"batch_label");
    short(&mut p, b"testing batch 1 of 1");
    short(&mut p, b"labels");
    p.extend_from_slice(&[b']', b'q', 4, b'(']);
    for &l in labels {
        match u8::try_from(l) {
            Ok(b) => p.extend_from_slice(&[b'K', b]),
            Err(_) => {
                p.push(b'J');
                p.extend_from_slice(&l.to_le_bytes());
            }
        }
    }
    p.push(b'e');
    short(&mut p, b"data");
    p.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\nq\x06cnumpy\nndarray\nq\x07K\x00\x85q\x08U\x01bq\x09\x87q\x0aRq\x0b(K\x01");
    p.push(b'J');
    p.extend_from_slice(&(n as i32).to_le_bytes());
    p.extend_from_slice(b"M\x00\x0c\x86q\x0ccnumpy\ndtype\nq\x0dU\x02u1q\x0eK\x00K\x01\x87Rq\x0f(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tq\x10b\x89T");
    p.extend_from_slice(&((n * 3072) as u32).to_le_bytes());
    for img in images {
        p.extend_from_slice(img);
    }
    p.extend_from_slice(b"q\x11tq\x12b");
    short(&mut p, b"filenames");
    p.extend_from_slice(&[b']', b'q', 0x13, b'(']);
    for i in 0..n {
        short(&mut p, format!("img_{i}.png").as_bytes());
    }
    p.extend_from_slice(b"eu.");
    p
}

/// Assemble a batch the way python 3 + numpy write it (protocol 4: FRAME, SHORT_BINUNICODE,
/// MEMOIZE, STACK_GLOBAL, BINBYTES8).
pub fn py3_batch(recs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut p = vec![0x80, 4, 0x95];
    p.extend_from_slice(&0u64.to_le_bytes()); // the frame length is a hint only
    let s = |p: &mut Vec<u8>, text: &str| {
        p.push(0x8c);
        p.push(text.len() as u8);
        p.extend_from_slice(text.as_bytes());
        p.push(0x94);
    };
    p.extend_from_slice(b"}\x94(");
    s(&mut p, "labels");
    p.extend_from_slice(b"]\x94(");
    for (l, _) in recs {
        p.extend_from_slice(&[b'K', *l]);
    }
    p.push(b'e');
    s(&mut p, "data");
    s(&mut p, "numpy.core.multiarray");
    s(&mut p, "_reconstruct");
    p.push(0x93);
    s(&mut p, "numpy");
    s(&mut p, "ndarray");
    p.extend_from_slice(b"\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01J");
    p.extend_from_slice(&(recs.len() as i32).to_le_bytes());
    p.extend_from_slice(b"M\x00\x0c\x86\x94");
    s(&mut p, "numpy");
    s(&mut p, "dtype");
    p.push(0x93);
    s(&mut p, "u1");
    p.extend_from_slice(b"\x89\x88\x87\x94R\x94(K\x03");
    s(&mut p, "|");
    p.extend_from_slice(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b\x89\x8e");
    p.extend_from_slice(&((recs.len() * 3072) as u64).to_le_bytes());
    for (_, img) in recs {
        p.extend_from_slice(img);
    }
    p.extend_from_slice(b"\x94t\x94bu.");
    p
}

pub fn py2_meta() -> Vec<u8> {
    let mut p = b"\x80\x02}q\x00(U\x0blabel_namesq\x01]q\x02(".to_vec();
    for n in ["a0", "b1", "c2", "d3", "e4", "f5", "g6", "h7", "i8", "j9"] {
        p.push(b'U');
        p.push(2);
        p.extend_from_slice(n.as_bytes());
    }
    p.extend_from_slice(b"eU\x07num_visq\x03M\x00\x0cu.");
    p
}

/// A fresh temporary directory holding a [`write_py_dir`] source, and its records.
pub fn temp_py_dir() -> (tempfile::TempDir, Records, Records) {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = write_py_dir(tmp.path());
    (tmp, train, test)
}

/// The error of loading `dir` after replacing its file `name` with `bytes`.
fn load_error_after_writing(dir: &Path, name: &str, bytes: &[u8]) -> String {
    std::fs::write(dir.join(name), bytes).unwrap();
    load_cifar10_py(dir, &NoProgress).unwrap_err().to_string()
}

pub fn write_py_dir(dir: &Path) -> (Records, Records) {
    std::fs::create_dir_all(dir).unwrap();
    let mut train = Vec::new();
    for i in 1..=5 {
        let recs = records(20, 100 + i, 10);
        std::fs::write(dir.join(format!("data_batch_{i}")), py2_batch(&recs)).unwrap();
        train.extend(recs);
    }
    let test = records(15, 7, 10);
    std::fs::write(dir.join("test_batch"), py2_batch(&test)).unwrap();
    (train, test)
}

#[test]
fn python2_cifar_batches_read_exactly() {
    let (tmp, train, test) = temp_py_dir();
    let d = load_cifar10_py(tmp.path(), &NoProgress).unwrap();
    assert_eq!(d.train.labels, train.iter().map(|r| u16::from(r.0)).collect::<Vec<_>>());
    assert_eq!(d.train.images, train.iter().flat_map(|r| r.1.clone()).collect::<Vec<_>>());
    assert_eq!(d.test.images, test.iter().flat_map(|r| r.1.clone()).collect::<Vec<_>>());
    assert_eq!(d.class_names[0], "airplane", "no batches.meta: standard names");
    std::fs::write(tmp.path().join("batches.meta"), py2_meta()).unwrap();
    let d = load_cifar10_py(tmp.path(), &NoProgress).unwrap();
    assert_eq!(d.class_names, ["a0", "b1", "c2", "d3", "e4", "f5", "g6", "h7", "i8", "j9"]);
}

#[test]
fn python3_numpy_protocol4_pickles_read_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let code = r#"
import pickle, sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(5)
for name, n in [("data_batch_%d" % i, 12) for i in range(1, 6)] + [("test_batch", 9)]:
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(x) for x in rng.integers(0, 10, size=n)]
    with open(f"{d}/{name}", "wb") as f:
        pickle.dump({"batch_label": "x", "labels": labels, "data": data}, f, protocol=4)
    with open(f"{d}/{name}.raw", "wb") as f:
        f.write(bytes(labels) + data.tobytes())
with open(f"{d}/batches.meta", "wb") as f:
    pickle.dump({"label_names": [f"n{i}" for i in range(10)], "num_vis": 3072}, f, protocol=4)
"#;
    run_python(code, &[tmp.path().to_str().unwrap()]);
    let d = load_cifar10_py(tmp.path(), &NoProgress).unwrap();
    let raw = |name: &str, n: usize| {
        let b = std::fs::read(tmp.path().join(format!("{name}.raw"))).unwrap();
        (b[..n].iter().map(|&x| u16::from(x)).collect::<Vec<_>>(), b[n..].to_vec())
    };
    let (l, i) = raw("data_batch_3", 12);
    assert_eq!(d.train.labels[24..36], l[..]);
    assert_eq!(d.train.images[24 * 3072..36 * 3072], i[..]);
    let (l, i) = raw("test_batch", 9);
    assert_eq!(d.test.labels, l);
    assert_eq!(d.test.images, i);
    assert_eq!(d.class_names[9], "n9");
}

#[test]
fn code_executing_and_unknown_pickles_are_refused() {
    let (tmp, _, _) = temp_py_dir();
    let mut truncated = py2_batch(&records(3, 1, 10));
    truncated.truncate(truncated.len() - 100);
    let mut recs = records(3, 1, 10);
    recs[2].0 = 12;
    let cases: [(&[u8], &[&str]); 4] = [
        // A classic exploit: os.system("echo hi").
        (b"\x80\x02cos\nsystem\nq\x00U\x07echo hiq\x01\x85q\x02Rq\x03.", &["global `os.system` is not allowed"]),
        // An opcode the reader does not know (INST 'i').
        (b"\x80\x02(iposix\nsystem\n.", &["byte offset 3", "opcode 0x69 is not supported"]),
        (&truncated, &["truncated"]),
        (&py2_batch(&recs), &["record 2 has label 12"]),
    ];
    for (bytes, needles) in cases {
        let e = load_error_after_writing(tmp.path(), "data_batch_2", bytes);
        for n in [&["data_batch_2"][..], needles].concat() {
            assert!(e.contains(n), "expected `{n}` in: {e}");
        }
    }
}

#[test]
fn protocol4_batch_assembled_here_reads_exactly() {
    // The fuzzer's protocol-4 seed must be a valid batch, or it would fuzz only error paths.
    let recs = records(4, 11, 10);
    let v = pickle::parse(Path::new("p4"), &py3_batch(&recs)).unwrap();
    let Some(Value::Array { shape, data, .. }) = dict_get(&v, "data") else { panic!("no data array: {v:?}") };
    assert_eq!(shape, &[4, 3072]);
    assert_eq!(data.as_slice(), recs.iter().flat_map(|r| r.1.clone()).collect::<Vec<_>>());
    let Some(Value::List(labels)) = dict_get(&v, "labels") else { panic!("no labels") };
    assert_eq!(labels, &recs.iter().map(|r| Value::Int(i64::from(r.0))).collect::<Vec<_>>());
}

/// A memo bomb: each 5-byte step GETs the memoized value, pairs it with the top and
/// memoizes the pair, so this 476-byte file describes 2^94 values. Refused once MAX_VALUES
/// values were made, in a few MB, with the file and offset named.
#[test]
fn memo_bomb_is_refused_in_bounded_memory() {
    let mut bomb = b"\x80\x02]q\x00".to_vec();
    while bomb.len() + 5 < 478 {
        bomb.extend_from_slice(b"h\x00\x86q\x00");
    }
    bomb.push(b'.');
    let path = Path::new("/data/bomb.pkl");
    let (r, usage) = measure(|| pickle::parse(path, &bomb));
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("/data/bomb.pkl: pickle byte offset") && e.contains(&format!("more than {MAX_VALUES} values")),
        "{e}"
    );
    assert!(usage.peak < 256 << 20, "{usage:?}");
    // A huge memo index costs nothing (the memo is a map, not a vector sized by the index).
    let (r, usage) = measure(|| pickle::parse(path, b"\x80\x02Nr\x00\x00\x00\x01r\xff\xff\xff\xff."));
    assert_eq!(r.unwrap(), Value::None);
    assert!(usage.peak < 1 << 20, "{usage:?}");
    let e = pickle::parse(path, b"\x80\x02j\xff\xff\xff\xff.").unwrap_err().to_string();
    assert!(e.contains("memo 4294967295 is empty"), "{e}");
}

/// 4 MB of nested lists (EMPTY_LIST + MARK, 1.4M times, then APPENDS as often): refused, where
/// the old reader built a list 1M levels deep and overflowed the stack dropping it.
#[test]
fn deeply_nested_lists_are_refused_without_overflowing_the_stack() {
    let n = 1_400_000;
    let mut p = b"\x80\x02".to_vec();
    for _ in 0..n {
        p.extend_from_slice(b"](");
    }
    p.extend(std::iter::repeat_n(b'e', n));
    p.push(b'.');
    assert!(p.len() > 4_000_000);
    let (r, usage) = measure(|| pickle::parse(Path::new("deep.pkl"), &p));
    let e = r.unwrap_err().to_string();
    // 2.8M pushes (lists and marks) reach the value limit before the APPENDS nest them.
    assert!(e.contains("deep.pkl: pickle byte offset") && e.contains(&format!("more than {MAX_VALUES} values")), "{e}");
    assert!(usage.peak < 256 << 20, "{usage:?}");
    // Nesting is refused at the depth limit itself: 100 lists appended into each other, the
    // k-th APPEND making depth k + 1.
    let mut a = b"\x80\x02".to_vec();
    a.extend([b']'; 100]);
    a.extend([b'a'; 99]);
    a.push(b'.');
    let e = pickle::parse(Path::new("deep.pkl"), &a).unwrap_err().to_string();
    assert!(e.contains(&format!("byte offset {}", 2 + 100 + MAX_DEPTH - 1)), "{e}");
    assert!(e.contains(&format!("containers nested deeper than {MAX_DEPTH} levels")), "{e}");
    // Tuples (TUPLE1 around the top, again and again) and MARK-based lists nest the same way.
    let mut t = b"\x80\x02)".to_vec();
    t.extend(std::iter::repeat_n(0x85, 100_000));
    assert!(pickle::parse(Path::new("t.pkl"), &t).unwrap_err().to_string().contains("nested deeper"));
    let mut m = b"\x80\x02".to_vec();
    m.extend(std::iter::repeat_n(b'(', 100_000));
    m.extend(std::iter::repeat_n(b'l', 100_000));
    assert!(pickle::parse(Path::new("m.pkl"), &m).unwrap_err().to_string().contains("nested deeper"));
    // A flat list of the same size is fine: width is bounded by MAX_VALUES, not depth.
    let mut flat = b"\x80\x02](".to_vec();
    for _ in 0..100_000 {
        flat.extend_from_slice(b"K\x07");
    }
    flat.extend_from_slice(b"e.");
    let Value::List(l) = pickle::parse(Path::new("flat.pkl"), &flat).unwrap() else { panic!("not a list") };
    assert_eq!(l.len(), 100_000);
}

#[test]
fn byte_string_lengths_are_checked_against_the_bytes_left() {
    let path = Path::new("len.pkl");
    for p in [
        &b"\x80\x02T\xff\xff\xff\xff."[..],
        b"\x80\x02\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.",
        b"\x80\x02\x8d\x00\x00\x00\x00\x00\x00\x00\x40abc.",
    ] {
        let (r, usage) = measure(|| pickle::parse(path, p));
        let e = r.unwrap_err().to_string();
        assert!(e.contains("len.pkl: pickle byte offset") && e.contains("truncated"), "{e}");
        assert!(usage.largest < 1 << 20, "{usage:?}");
    }
}

#[test]
fn negative_label_prints_as_negative() {
    let (tmp, _, _) = temp_py_dir();
    let img = vec![0u8; 3072];
    let e = load_error_after_writing(tmp.path(), "data_batch_4", &py2_batch_labels(&[3, -1], &[&img, &img]));
    assert!(e.contains("data_batch_4") && e.contains("record 1 has label -1, outside 0..10"), "{e}");
    assert!(!e.contains("18446744073709551615"), "{e}");
}

#[test]
fn empty_or_oversized_pickle_files_are_refused() {
    let (tmp, _, _) = temp_py_dir();
    let e = load_error_after_writing(tmp.path(), "data_batch_5", b"");
    assert!(e.contains("data_batch_5") && e.contains("empty (0 bytes)"), "{e}");
    // A sparse 4 GiB file: refused by its size, nothing read.
    std::fs::File::create(tmp.path().join("data_batch_5")).unwrap().set_len(4 << 30).unwrap();
    let (r, usage) = measure(|| load_cifar10_py(tmp.path(), &NoProgress));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("data_batch_5") && e.contains("larger than 64 MiB"), "{e}");
    // The five batches before it are read (a few 10 KB each), the big one is not.
    assert!(usage.largest < 1 << 20, "{usage:?}");
}
