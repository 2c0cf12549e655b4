//! Source readers: exact bytes, labels, and errors that name the file, record and value.

use std::path::Path;

use lt_data::source::{DEFAULT_MAX_SOURCE_BYTES, SourceOptions, SourceSpec, cifar, folder, load, synthetic};
use lt_data::{NoProgress, Split};

use crate::fuzz::measure;
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

#[test]
fn zero_byte_cifar_batch_is_a_truncated_download() {
    let tmp = tempfile::tempdir().unwrap();
    cifar10_dir(tmp.path(), 5, 5);
    std::fs::write(tmp.path().join("data_batch_2.bin"), b"").unwrap();
    let e = cifar::load_cifar10(tmp.path(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("data_batch_2.bin: the file is empty (0 bytes)") && e.contains("lt-data fetch"), "{e}");
    // The size check shared with `build`'s memory-mapped path says the same.
    let plan = cifar::plan_cifar10(tmp.path()).unwrap();
    let e = cifar::check_sizes(&plan.train, plan.layout).unwrap_err().to_string();
    assert!(e.contains("data_batch_2.bin: the file is empty"), "{e}");
}

#[test]
fn huge_cifar_file_is_refused_before_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    cifar10_dir(tmp.path(), 5, 5);
    // A sparse file of 2^22 whole records (12.9 GB): the old reader allocated it all.
    let f = tmp.path().join("data_batch_5.bin");
    std::fs::File::options().write(true).open(&f).unwrap().set_len(3073 << 22).unwrap();
    let (r, usage) = measure(|| cifar::load_cifar10(tmp.path(), &NoProgress));
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("data_batch_5.bin") && e.contains(&format!("over the limit of {DEFAULT_MAX_SOURCE_BYTES}")),
        "{e}"
    );
    assert!(usage.largest < 1 << 20, "{usage:?}");
    // The limit is the source option `--max-source-bytes` sets.
    cifar10_dir(tmp.path(), 5, 5);
    let spec = SourceSpec::Cifar10(tmp.path().into());
    let small = SourceOptions { max_source_bytes: 30 * 3073 - 1, ..SourceOptions::default() };
    assert!(load(&spec, &small, &NoProgress).unwrap_err().to_string().contains("--max-source-bytes"));
    let exact = SourceOptions { max_source_bytes: 30 * 3073, ..SourceOptions::default() };
    assert_eq!(load(&spec, &exact, &NoProgress).unwrap().train.len(), 25);
}

#[test]
fn synthetic_counts_are_bounded_before_allocating() {
    let (r, usage) = measure(|| load(&SourceSpec::Synthetic(99_999_999_999), &SourceOptions::default(), &NoProgress));
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("source `synthetic:99999999999`")
            && e.contains(&format!("over the limit of {DEFAULT_MAX_SOURCE_BYTES} bytes (--max-source-bytes)")),
        "{e}"
    );
    assert!(usage.largest < 1 << 20, "{usage:?}");
    let opts = SourceOptions { test_per_class: 50_000_000_000, ..SourceOptions::default() };
    let e = load(&SourceSpec::Synthetic(5), &opts, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("50000000000 test images per class (--test-per-class)"), "{e}");
    let opts = SourceOptions { test_per_class: u64::MAX, ..SourceOptions::default() };
    assert!(load(&SourceSpec::Synthetic(u64::MAX), &opts, &NoProgress).is_err());
    // Exactly at a raised or lowered limit.
    let at = |limit: u64| SourceOptions { test_per_class: 1, max_source_bytes: limit, ..SourceOptions::default() };
    let need = 2 * 10 * 3072;
    assert_eq!(load(&SourceSpec::Synthetic(1), &at(need), &NoProgress).unwrap().train.len(), 10);
    assert!(load(&SourceSpec::Synthetic(1), &at(need - 1), &NoProgress).is_err());
}

/// Two small PNGs in DIR/imgs: a.png 5x4, b.png 3x6.
fn two_images(dir: &Path) {
    use image::{Rgb, RgbImage};
    std::fs::create_dir_all(dir.join("imgs")).unwrap();
    RgbImage::from_fn(5, 4, |x, y| Rgb([x as u8, y as u8, 1])).save(dir.join("imgs/a.png")).unwrap();
    RgbImage::from_fn(3, 6, |x, y| Rgb([x as u8, y as u8, 2])).save(dir.join("imgs/b.png")).unwrap();
}

#[test]
fn folder_size_and_total_bytes_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    two_images(tmp.path());
    let list = tmp.path().join("train.txt");
    std::fs::write(&list, "imgs/a.png 0\nimgs/b.png 1\n").unwrap();
    let spec = SourceSpec::Folder(list.clone());
    let (r, usage) = measure(|| load(&spec, &SourceOptions { size: 100_000, ..SourceOptions::default() }, &NoProgress));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("--size 100000 is over the limit of 4096"), "{e}");
    assert!(usage.largest < 1 << 20, "{usage:?}");
    // Within the side limit, but the images would not fit the memory limit.
    let opts = SourceOptions { size: 64, max_source_bytes: 2 * 3 * 64 * 64 - 1, ..SourceOptions::default() };
    let e = load(&spec, &opts, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("train.txt") && e.contains("2 images x 12288 bytes (--size 64)"), "{e}");
    let opts = SourceOptions { size: 64, max_source_bytes: 2 * 3 * 64 * 64, ..SourceOptions::default() };
    assert_eq!(load(&spec, &opts, &NoProgress).unwrap().train.images.len(), 2 * 3 * 64 * 64);
}

#[test]
fn folder_extreme_aspect_ratio_is_refused_before_resizing() {
    use image::{Rgb, RgbImage};
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("thin.png");
    RgbImage::from_pixel(1, 3000, Rgb([9, 9, 9])).save(&f).unwrap();
    // The old reader resized it to 4096 x 12,288,000 (150 GB) before cropping.
    let (r, usage) = measure(|| folder::load_image(&f, 4096));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("thin.png") && e.contains("1x3000 resized to a shorter side of 4096"), "{e}");
    assert!(usage.largest < 64 << 20, "{usage:?}");
    assert_eq!(folder::load_image(&f, 2).unwrap(), vec![9; 12]);
}

/// CRC-32 (IEEE), for patching PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 };
        }
    }
    !c
}

#[test]
fn folder_huge_image_header_is_refused_before_decoding() {
    use image::{Rgb, RgbImage};
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("huge.png");
    RgbImage::from_pixel(2, 2, Rgb([1, 2, 3])).save(&f).unwrap();
    // Patch IHDR (bytes 16..24 after the 8-byte signature and the chunk's length and type)
    // to claim 20000 x 20000 pixels, with a valid CRC.
    let mut png = std::fs::read(&f).unwrap();
    png[16..20].copy_from_slice(&20_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&20_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(&f, &png).unwrap();
    let (r, usage) = measure(|| folder::load_image(&f, 32));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("huge.png") && e.contains("20000x20000 is 400000000 pixels, over the limit of 50000000"), "{e}");
    assert!(usage.largest < 16 << 20, "{usage:?}");
}

#[test]
fn list_labels_must_number_the_classes_densely() {
    let tmp = tempfile::tempdir().unwrap();
    two_images(tmp.path());
    let list = tmp.path().join("train.txt");
    let opts = SourceOptions { size: 4, ..SourceOptions::default() };
    // A stray label of 60000 used to make 60,001 classes, 59,999 of them empty.
    std::fs::write(&list, "imgs/a.png 0\nimgs/b.png 1\n# x\nimgs/a.png 60000\n").unwrap();
    let e = load(&SourceSpec::Folder(list.clone()), &opts, &NoProgress).unwrap_err().to_string();
    assert!(
        e.contains(
            "train.txt:4: label 60000 makes 60001 classes but 59998 classes (2 to 59999) have no training image"
        ),
        "{e}"
    );
    std::fs::write(&list, "imgs/a.png 0\nimgs/b.png 2\n").unwrap();
    let e = load(&SourceSpec::Folder(list.clone()), &opts, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("train.txt:2: label 2 makes 3 classes but class 1 has no training image"), "{e}");
    // A test label that is no training class.
    std::fs::write(&list, "imgs/a.png 0\nimgs/b.png 1\n").unwrap();
    let test = tmp.path().join("test.txt");
    std::fs::write(&test, "imgs/a.png 1\nimgs/b.png 5\n").unwrap();
    let opts = SourceOptions { size: 4, test_list: Some(test), ..SourceOptions::default() };
    let e = load(&SourceSpec::Folder(list.clone()), &opts, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("test.txt:2: label 5 is not a training class: the training list has 2 classes (0..1)"), "{e}");
    // Dense labels in any order load.
    std::fs::write(&list, "imgs/b.png 1\nimgs/a.png 0\n").unwrap();
    let d = load(&SourceSpec::Folder(list), &SourceOptions { size: 4, ..SourceOptions::default() }, &NoProgress);
    assert_eq!(d.unwrap().class_names, ["0", "1"]);
}
