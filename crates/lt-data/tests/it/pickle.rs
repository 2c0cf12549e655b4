//! The safe pickle reader: CIFAR-10 python batches as python 2 wrote them (hand-assembled
//! here, opcode by opcode), as python 3 + numpy write them (protocol 4), and refusals.

use std::path::Path;

use lt_data::NoProgress;
use lt_data::source::pickle::load_cifar10_py;

use crate::helpers::{Records, records, run_python};

/// Assemble a batch the way python 2's cPickle (protocol 2) wrote the CIFAR files.
pub fn py2_batch(recs: &[(u8, Vec<u8>)]) -> Vec<u8> {
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
    for (l, _) in recs {
        p.extend_from_slice(&[b'K', *l]);
    }
    p.push(b'e');
    short(&mut p, b"data");
    p.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\nq\x06cnumpy\nndarray\nq\x07K\x00\x85q\x08U\x01bq\x09\x87q\x0aRq\x0b(K\x01");
    p.push(b'J');
    p.extend_from_slice(&(recs.len() as i32).to_le_bytes());
    p.extend_from_slice(b"M\x00\x0c\x86q\x0ccnumpy\ndtype\nq\x0dU\x02u1q\x0eK\x00K\x01\x87Rq\x0f(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tq\x10b\x89T");
    p.extend_from_slice(&((recs.len() * 3072) as u32).to_le_bytes());
    for (_, img) in recs {
        p.extend_from_slice(img);
    }
    p.extend_from_slice(b"q\x11tq\x12b");
    short(&mut p, b"filenames");
    p.extend_from_slice(&[b']', b'q', 0x13, b'(']);
    for i in 0..recs.len() {
        short(&mut p, format!("img_{i}.png").as_bytes());
    }
    p.extend_from_slice(b"eu.");
    p
}

fn py2_meta() -> Vec<u8> {
    let mut p = b"\x80\x02}q\x00(U\x0blabel_namesq\x01]q\x02(".to_vec();
    for n in ["a0", "b1", "c2", "d3", "e4", "f5", "g6", "h7", "i8", "j9"] {
        p.push(b'U');
        p.push(2);
        p.extend_from_slice(n.as_bytes());
    }
    p.extend_from_slice(b"eU\x07num_visq\x03M\x00\x0cu.");
    p
}

fn write_py_dir(dir: &Path) -> (Records, Records) {
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
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = write_py_dir(tmp.path());
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
    let tmp = tempfile::tempdir().unwrap();
    write_py_dir(tmp.path());
    let f = tmp.path().join("data_batch_2");
    // A classic exploit: os.system("echo hi").
    std::fs::write(&f, b"\x80\x02cos\nsystem\nq\x00U\x07echo hiq\x01\x85q\x02Rq\x03.").unwrap();
    let e = load_cifar10_py(tmp.path(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("data_batch_2") && e.contains("global `os.system` is not allowed"), "{e}");
    // An opcode the reader does not know (INST 'i').
    std::fs::write(&f, b"\x80\x02(iposix\nsystem\n.").unwrap();
    let e = load_cifar10_py(tmp.path(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("byte offset 3") && e.contains("opcode 0x69 is not supported"), "{e}");
    // Truncated file.
    let mut good = py2_batch(&records(3, 1, 10));
    good.truncate(good.len() - 100);
    std::fs::write(&f, good).unwrap();
    let e = load_cifar10_py(tmp.path(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
    // A label out of range.
    let mut recs = records(3, 1, 10);
    recs[2].0 = 12;
    std::fs::write(&f, py2_batch(&recs)).unwrap();
    let e = load_cifar10_py(tmp.path(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("data_batch_2") && e.contains("record 2 has label 12"), "{e}");
}
