//! AutoAugment / RandAugment operations against torchvision, and the loader's augmented
//! batches: deterministic per (seed, epoch, position), Cutout's square.
//!
//! `augment_golden.json` is written by `scripts/augment-golden.py` (torchvision 0.29.2, torch
//! 2.15, CPU): each case is an operation at a magnitude bin, and the bytes torchvision's
//! `_apply_op` (nearest, no fill) makes of a small test image. CI has no torch; the file pins
//! them.

use std::sync::Arc;

use lt_format::config::TrainConfig;
use lt_train::augment::{self, ALL_OPS, Op, Params, RANDAUGMENT_OPS};
use lt_train::dataset::Split;
use lt_train::loader::{Augment, BatchMaker, Normalization};

/// The script's test image: byte i is (i·37 + 11·channel + 40) mod 200 + 20.
fn test_image([c, h, w]: [usize; 3]) -> Vec<u8> {
    (0..c * h * w).map(|i| ((i * 37 + 11 * (i / (h * w)) + 40) % 200 + 20) as u8).collect()
}

fn hex(bytes: &str) -> Vec<u8> {
    (0..bytes.len()).step_by(2).map(|i| u8::from_str_radix(&bytes[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn every_operation_and_magnitude_equals_torchvision() {
    let golden: serde_json::Value = serde_json::from_str(include_str!("augment_golden.json")).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() > 200, "{} cases", cases.len());
    let mut seen = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["op"].as_str().unwrap();
        let op = Op::from_name(name).unwrap_or_else(|| panic!("unknown op {name}"));
        seen.insert(op);
        let shape: Vec<usize> =
            case["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let shape = [shape[0], shape[1], shape[2]];
        let bins = case["bins"].as_u64().unwrap() as usize;
        let bin = case["bin"].as_u64().unwrap() as usize;
        let negative = case["negative"].as_bool().unwrap();
        let want_mag = case["magnitude"].as_f64().unwrap();
        let (mag, signed) = augment::magnitude(op, bin, bins, [shape[1], shape[2]]);
        assert!(signed || !negative, "{name}: only signed operations are negated");
        let mag = if negative { -mag } else { mag };
        assert_eq!(mag, want_mag, "{name} bin {bin}/{bins}: magnitude");
        let mut img = test_image(shape);
        augment::apply(op, mag, &mut img, shape);
        let want = hex(case["out"].as_str().unwrap());
        if img != want {
            let differ = img.iter().zip(&want).filter(|(a, b)| a != b).count();
            failures.push(format!("{name} {mag} on {shape:?}: {differ} bytes differ"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert_eq!(seen.len(), ALL_OPS.len(), "every operation has golden cases");
}

#[test]
fn hand_computed_pixel_operations() {
    // One 1×1×4 image: posterize to 4 bits keeps the high nibble, solarize at 128 inverts
    // from 128 up, invert is 255 − v, brightness 1.5 truncates 1.5·v and clamps at 255.
    let shape = [1, 1, 4];
    let run = |op, mag| {
        let mut img = vec![3u8, 100, 128, 250];
        augment::apply(op, mag, &mut img, shape);
        img
    };
    assert_eq!(run(Op::Posterize, 4.0), [0, 96, 128, 240]);
    assert_eq!(run(Op::Solarize, 128.0), [3, 100, 127, 5]);
    assert_eq!(run(Op::Invert, 0.0), [252, 155, 127, 5]);
    assert_eq!(run(Op::Brightness, 0.5), [4, 150, 192, 255]);
    // Autocontrast stretches 3..250 to 0..255: (v − 3)·255/247, truncated.
    assert_eq!(run(Op::AutoContrast, 0.0), [0, 100, 129, 255]);
    // TranslateX by +1 moves pixels right, zero entering from the left; −1.7 truncates to −1.
    assert_eq!(run(Op::TranslateX, 1.0), [0, 3, 100, 128]);
    assert_eq!(run(Op::TranslateX, -1.7), [100, 128, 250, 0]);
}

#[test]
fn magnitude_tables_match_the_papers_ranges() {
    let side = [32, 32];
    assert_eq!(augment::magnitude(Op::Rotate, 30, 31, side), (30.0, true));
    assert_eq!(augment::magnitude(Op::Rotate, 0, 31, side), (0.0, true));
    assert_eq!(augment::magnitude(Op::Solarize, 0, 31, side), (255.0, false));
    assert_eq!(augment::magnitude(Op::Posterize, 30, 31, side), (4.0, false));
    assert_eq!(augment::magnitude(Op::Posterize, 0, 10, side), (8.0, false));
    // Translation up to 150/331 of the side: 14.5 pixels on CIFAR.
    let (t, _) = augment::magnitude(Op::TranslateX, 30, 31, side);
    assert!((t - 150.0 / 331.0 * 32.0).abs() < 1e-5, "{t}");
    assert_eq!(RANDAUGMENT_OPS.len(), 14);
    assert_eq!(augment::CIFAR10_POLICY.len(), 25);
}

fn maker(augment: Augment, params: Params) -> BatchMaker {
    let shape = [3usize, 32, 32];
    let n = 24;
    let images: Vec<u8> = (0..n * 3072).map(|i| ((i * 2654435761usize) >> 13) as u8).collect();
    let split = Split { labels: (0..n as u16).collect(), images };
    let norm = Normalization { mean: vec![0.5, 0.4, 0.3], std: vec![0.25, 0.2, 0.3] };
    BatchMaker { split: Arc::new(split), shape, norm, augment, params, seed: 7 }
}

#[test]
fn augmented_batches_are_a_function_of_seed_epoch_and_position() {
    let indices: Vec<u32> = (0..24).rev().collect();
    for (augment, params) in [
        (Augment::AutoAugment, Params::default()),
        (Augment::RandAugment, Params { randaugment_n: 3, randaugment_m: 15, cutout: None }),
        (Augment::CropFlip, Params { cutout: Some(16), ..Params::default() }),
        (Augment::None, Params { cutout: Some(8), ..Params::default() }),
        (Augment::RandAugment, Params { cutout: Some(16), ..Params::default() }),
    ] {
        let m = maker(augment, params);
        let whole = m.make(3, 0, &indices);
        assert_eq!(whole.images, m.make(3, 0, &indices).images, "{augment}: same call, same bytes");
        // A resumed run that starts at position 10 makes the same images for positions 10...
        let tail = m.make(3, 10, &indices[10..]);
        assert_eq!(tail.images, whole.images[10 * 3072..], "{augment}: resume-exact");
        // ... and another epoch or seed makes other ones.
        assert_ne!(m.make(4, 0, &indices).images, whole.images, "{augment}: epochs differ");
        let other_seed = BatchMaker { seed: 8, ..m.clone() };
        assert_ne!(other_seed.make(3, 0, &indices).images, whole.images, "{augment}: seeds differ");
    }
}

#[test]
fn policies_change_images_beyond_crop_flip_and_keep_its_offsets() {
    let indices: Vec<u32> = (0..24).collect();
    let base = maker(Augment::CropFlip, Params::default()).make(0, 0, &indices).images;
    for augment in [Augment::AutoAugment, Augment::RandAugment] {
        let params = Params { randaugment_n: 2, randaugment_m: 20, cutout: None };
        let got = maker(augment, params).make(0, 0, &indices).images;
        let changed = got.chunks(3072).zip(base.chunks(3072)).filter(|(a, b)| a != b).count();
        // AutoAugment skips both steps with probability ~0.2 on average; RandAugment draws
        // Identity with probability 1/14 per op.
        assert!(changed >= 12, "{augment}: {changed} of 24 images changed");
    }
}

#[test]
fn cutout_zeroes_one_clipped_square_of_the_normalised_image() {
    let indices: Vec<u32> = (0..24).collect();
    let plain = maker(Augment::None, Params::default()).make(0, 0, &indices).images;
    let cut = maker(Augment::None, Params { cutout: Some(16), ..Params::default() }).make(0, 0, &indices).images;
    let mut clipped = 0;
    for (a, b) in cut.chunks(3072).zip(plain.chunks(3072)) {
        let mut rows = std::collections::BTreeSet::new();
        let mut cols = std::collections::BTreeSet::new();
        for ch in 0..3 {
            for p in 0..1024 {
                let (x, y) = (a[ch * 1024 + p], b[ch * 1024 + p]);
                if x != y {
                    assert_eq!(x, 0.0, "Cutout writes the normalised mean, 0");
                    rows.insert(p / 32);
                    cols.insert(p % 32);
                }
            }
        }
        // A 16-pixel square centred in the image; clipped to fewer rows or columns at edges.
        assert!(rows.len() <= 16 && cols.len() <= 16 && !rows.is_empty(), "{rows:?} {cols:?}");
        let contiguous = |s: &std::collections::BTreeSet<usize>| s.last().unwrap() - s.first().unwrap() + 1 == s.len();
        assert!(contiguous(&rows) && contiguous(&cols));
        clipped += usize::from(rows.len() < 16 || cols.len() < 16);
    }
    assert!(clipped > 0 && clipped < 24, "some squares clipped at an edge, not all: {clipped}");
}

#[test]
fn config_validates_and_reads_the_new_settings() {
    let base = TrainConfig { arch: Some("resnet8".into()), data: "d".into(), out: "o".into(), ..Default::default() };
    assert!(base.validate().is_ok());
    for bad in [
        TrainConfig { randaugment_n: 0, ..base.clone() },
        TrainConfig { randaugment_m: 31, ..base.clone() },
        TrainConfig { cutout: Some(0), ..base.clone() },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
    let text = "arch = \"resnet8\"\ndata = \"d\"\nout = \"o\"\naugment = \"randaugment\"\nrandaugment_n = 3\nrandaugment_m = 5\ncutout = 16\n";
    let cfg: TrainConfig = toml::from_str(text).unwrap();
    assert_eq!(cfg.augment, Augment::RandAugment);
    assert_eq!(Params::of(&cfg), Params { randaugment_n: 3, randaugment_m: 5, cutout: Some(16) });
    assert_eq!("autoaugment".parse::<Augment>().unwrap(), Augment::AutoAugment);
}
