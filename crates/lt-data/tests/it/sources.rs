//! Source readers: exact bytes, labels, and errors that name the file, record and value.

use lt_data::source::{SourceOptions, SourceSpec, cifar, load, synthetic};
use lt_data::{NoProgress, Split};

use crate::helpers::{cifar10_dir, records, write_cifar10_file};

fn flat(recs: &[(u8, Vec<u8>)]) -> Split {
    Split {
        labels: recs.iter().map(|r| u16::from(r.0)).collect(),
        images: recs.iter().flat_map(|r| r.1.clone()).collect(),
    }
}

#[test]
fn cifar10_binary_reads_every_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = cifar10_dir(tmp.path(), 37, 21);
    let d = cifar::load_cifar10(tmp.path(), &NoProgress).unwrap();
    assert_eq!(d.train, flat(&train));
    assert_eq!(d.test, flat(&test));
    assert_eq!(d.image_shape, [3, 32, 32]);
    assert_eq!(d.class_names[9], "truck");
    std::fs::write(tmp.path().join("batches.meta.txt"), "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n").unwrap();
    assert_eq!(cifar::load_cifar10(tmp.path(), &NoProgress).unwrap().class_names[9], "j");
    std::fs::write(tmp.path().join("batches.meta.txt"), "a\nb\n").unwrap();
    let e = cifar::load_cifar10(tmp.path(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("batches.meta.txt") && e.contains("2 class names, expected 10"), "{e}");
}

#[test]
fn cifar10_bad_size_bad_label_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    cifar10_dir(tmp.path(), 5, 5);
    let f = tmp.path().join("data_batch_3.bin");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.extend_from_slice(&[1, 2, 3]);
    std::fs::write(&f, &bytes).unwrap();
    let e = cifar::load_cifar10(tmp.path(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("data_batch_3.bin") && e.contains("size 15368 bytes") && e.contains("3073-byte"), "{e}");
    let mut recs = records(5, 3, 10);
    recs[4].0 = 10;
    write_cifar10_file(&f, &recs);
    let e = cifar::load_cifar10(tmp.path(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("data_batch_3.bin: record 4 has label 10, outside 0..10"), "{e}");
    std::fs::remove_file(tmp.path().join("test_batch.bin")).unwrap();
    let e = cifar::load_cifar10(tmp.path(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("test_batch.bin: missing") && e.contains("lt-data fetch"), "{e}");
}

#[test]
fn cifar100_fine_and_coarse_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let mk = |n: usize, seed: u64| {
        let recs = records(n, seed, 100);
        let mut bytes = Vec::new();
        for (l, img) in &recs {
            bytes.push(l / 5); // coarse
            bytes.push(*l); // fine
            bytes.extend_from_slice(img);
        }
        (recs, bytes)
    };
    let (train, tb) = mk(230, 1);
    let (test, sb) = mk(40, 2);
    std::fs::write(tmp.path().join("train.bin"), tb).unwrap();
    std::fs::write(tmp.path().join("test.bin"), &sb).unwrap();
    let d = cifar::load_cifar100(tmp.path(), false, &NoProgress).unwrap();
    assert_eq!(d.train, flat(&train));
    assert_eq!(d.test, flat(&test));
    assert_eq!(d.num_classes(), 100);
    let c = cifar::load_cifar100(tmp.path(), true, &NoProgress).unwrap();
    assert_eq!(c.num_classes(), 20);
    assert_eq!(c.train.labels, train.iter().map(|r| u16::from(r.0 / 5)).collect::<Vec<_>>());
    assert_eq!(c.train.images, d.train.images);
    let mut bad = sb.clone();
    bad[3074 * 7 + 1] = 100;
    std::fs::write(tmp.path().join("test.bin"), bad).unwrap();
    let e = cifar::load_cifar100(tmp.path(), false, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("test.bin: record 7 has fine label 100, outside 0..100"), "{e}");
}

#[test]
fn synthetic_is_deterministic_balanced_and_varied() {
    let a = synthetic::generate(50, 20, 3);
    assert_eq!(a.train.len(), 500);
    assert_eq!(a.test.len(), 200);
    assert_eq!(a.train.images.len(), 500 * 3072);
    assert_eq!(crate::helpers::count(a.train.labels.iter().copied(), 10), vec![50; 10]);
    assert_eq!(a, synthetic::generate(50, 20, 3));
    assert_ne!(a.train.images, synthetic::generate(50, 20, 4).train.images);
    // The test split is not a copy of the train split.
    assert_ne!(a.train.images[..3072], a.test.images[..3072]);
    // No two images alike; pixels use the whole range.
    let imgs: std::collections::HashSet<&[u8]> = a.train.images.chunks(3072).collect();
    assert_eq!(imgs.len(), 500);
    assert!(a.train.images.contains(&0) && a.train.images.contains(&255));
}

/// Not trivial: a nearest-class-mean classifier on raw pixels (which would solve a data set
/// whose classes differ by colour or position) stays far from perfect.
#[test]
fn synthetic_is_not_solved_by_class_means() {
    let d = synthetic::generate(300, 100, 0);
    let mut means = vec![vec![0f64; 3072]; 10];
    for (i, &l) in d.train.labels.iter().enumerate() {
        for (m, &p) in means[l as usize].iter_mut().zip(d.train.image(i, 3072)) {
            *m += f64::from(p) / 300.0;
        }
    }
    let mut correct = 0;
    for (i, &l) in d.test.labels.iter().enumerate() {
        let img = d.test.image(i, 3072);
        let best = (0..10)
            .min_by(|&a, &b| {
                let da: f64 = means[a].iter().zip(img).map(|(m, &p)| (m - f64::from(p)).powi(2)).sum();
                let db: f64 = means[b].iter().zip(img).map(|(m, &p)| (m - f64::from(p)).powi(2)).sum();
                da.total_cmp(&db)
            })
            .unwrap();
        correct += usize::from(best == l as usize);
    }
    let acc = correct as f64 / d.test.len() as f64;
    assert!(acc < 0.6, "nearest class mean reaches {acc}");
}

#[test]
fn source_specs_parse_and_refuse() {
    assert_eq!(SourceSpec::parse("cifar10:/x").unwrap(), SourceSpec::Cifar10("/x".into()));
    assert_eq!(SourceSpec::parse("synthetic:5").unwrap(), SourceSpec::Synthetic(5));
    for bad in ["cifar10", "nope:1", "synthetic:0", "synthetic:x", "folder:"] {
        assert!(SourceSpec::parse(bad).unwrap_err().to_string().contains(&format!("`{bad}`")), "{bad}");
    }
}

#[test]
fn folder_tree_and_list_file() {
    use image::{Rgb, RgbImage};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("imgs");
    // Two classes; 40x20 images (resized to 16x8? no: shorter side 20 -> 8, then crop 8x8).
    for (ci, class) in ["cat", "ant"].iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for k in 0..3u8 {
            let img = RgbImage::from_fn(40, 20, |x, y| Rgb([x as u8 * 6, y as u8 * 12, k * 50 + ci as u8]));
            img.save(root.join(class).join(format!("{k}.png"))).unwrap();
        }
    }
    std::fs::write(root.join("cat").join("notes.txt"), "ignored").unwrap();
    let opts = SourceOptions { size: 8, ..SourceOptions::default() };
    let d = load(&SourceSpec::Folder(root.clone()), &opts, &NoProgress).unwrap();
    assert_eq!(d.class_names, ["ant", "cat"], "sorted class names");
    assert_eq!(d.train.labels, [0, 0, 0, 1, 1, 1]);
    assert_eq!(d.image_shape, [3, 8, 8]);
    assert_eq!(d.train.images.len(), 6 * 192);
    // Blue channel is constant per image: k*50 + class.
    let blue = &d.train.image(4, 192)[128..192];
    assert!(blue.iter().all(|&b| b == 50), "{blue:?}");
    // Center crop of a 16x8 resize: the red channel rises from left to right.
    let red = &d.train.image(0, 192)[..8];
    assert!(red.windows(2).all(|w| w[0] < w[1]), "{red:?}");

    // List form, relative to the list's directory.
    std::fs::write(tmp.path().join("train.txt"), "imgs/cat/0.png 1\nimgs/ant/2.png 0\n").unwrap();
    std::fs::write(tmp.path().join("test.txt"), "imgs/ant/1.png 0\n").unwrap();
    let opts = SourceOptions { size: 8, test_list: Some(tmp.path().join("test.txt")), ..SourceOptions::default() };
    let l = load(&SourceSpec::Folder(tmp.path().join("train.txt")), &opts, &NoProgress).unwrap();
    assert_eq!(l.train.labels, [1, 0]);
    assert_eq!(l.train.image(0, 192), d.train.image(3, 192));
    assert_eq!(l.test.image(0, 192), d.train.image(1, 192));

    // An unreadable image names the file.
    std::fs::write(root.join("ant").join("broken.jpg"), b"not a jpeg").unwrap();
    let e = load(&SourceSpec::Folder(root.clone()), &opts, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("broken.jpg") && e.contains("cannot decode image"), "{e}");
    std::fs::write(tmp.path().join("bad.txt"), "imgs/cat/0.png one\n").unwrap();
    let e = load(&SourceSpec::Folder(tmp.path().join("bad.txt")), &opts, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("bad.txt:1") && e.contains("`one`"), "{e}");
}
