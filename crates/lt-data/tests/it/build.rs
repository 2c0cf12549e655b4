//! Dataset directories: contents, determinism, atomic output, and readability by polars,
//! pyarrow and DuckDB.

use std::path::{Path, PathBuf};

use lt_data::build::{BuildConfig, ProfileSpec, build, partial_dir};
use lt_data::parquet::{read_frame, u16_column, u32_column};
use lt_data::{DatasetMeta, NoProgress, Profile, SourceOptions, SourceSpec, Strategy};

use crate::helpers::{cifar10_dir, dir_bytes, run_python};

fn config(source: &Path, out: &Path, profile: Profile) -> BuildConfig {
    BuildConfig {
        source_text: format!("cifar10:{}", source.display()),
        source: SourceSpec::Cifar10(source.into()),
        source_options: SourceOptions::default(),
        profile: ProfileSpec::Ready(profile),
        seed: 9,
        val_per_class: 0,
        strategies: vec![Strategy::Instance, Strategy::ClassBalanced, Strategy::RandomOver],
        epochs: 2,
        out: out.into(),
        force: false,
    }
}

fn lt_profile() -> Profile {
    Profile::Exp { imbalance: 10.0, n_max: None, shuffle_classes: false }
}

#[test]
fn cifar10_build_round_trips_and_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let (train, test) = cifar10_dir(&src, 200, 150);
    let out = tmp.path().join("ds");
    let meta = build(&config(&src, &out, lt_profile()), &NoProgress).unwrap();
    assert!(!partial_dir(&out).exists());
    assert_eq!(meta.source_counts, vec![100; 10]);
    assert_eq!(meta.subset_counts, [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]);
    assert_eq!(meta.test_counts, vec![15; 10]);
    assert_eq!(DatasetMeta::read(&out).unwrap(), meta);
    let names: Vec<String> = dir_bytes(&out).into_iter().map(|f| f.0).collect();
    assert_eq!(
        names,
        [
            ".lt-output.json",
            "dataset.json",
            "manifest-class-balanced.parquet",
            "manifest-instance.parquet",
            "manifest-random-over.parquet",
            "samples.parquet",
            "subset.parquet"
        ]
    );
    for (name, hash) in &meta.files {
        assert_eq!(&lt_data::inspect::sha256_file(&out.join(name)).unwrap(), hash, "{name}");
    }

    // Image bytes: source -> Parquet (read back with polars).
    let p = out.join("samples.parquet");
    let df = read_frame(&p, None).unwrap();
    assert_eq!(df.height(), 1150);
    let idx = u32_column(&df, &p, "index").unwrap();
    let lab = u16_column(&df, &p, "label").unwrap();
    let split: Vec<String> =
        df.column("split").unwrap().str().unwrap().iter().map(|s| s.unwrap().to_string()).collect();
    let img: Vec<Vec<u8>> = df.column("image").unwrap().binary().unwrap().iter().map(|b| b.unwrap().to_vec()).collect();
    for (row, (s, i)) in split.iter().zip(&idx).enumerate() {
        let rec = if s == "train" { &train[*i as usize] } else { &test[*i as usize] };
        assert_eq!(u16::from(rec.0), lab[row]);
        assert_eq!(rec.1, img[row], "row {row}");
    }
    assert_eq!(split.iter().filter(|s| *s == "test").count(), 150);

    // Subset: sorted, labels agree with the source.
    let sp = out.join("subset.parquet");
    let sub = read_frame(&sp, None).unwrap();
    let si = u32_column(&sub, &sp, "index").unwrap();
    let sl = u16_column(&sub, &sp, "label").unwrap();
    assert!(si.windows(2).all(|w| w[0] < w[1]));
    for (i, l) in si.iter().zip(&sl) {
        assert_eq!(u16::from(train[*i as usize].0), *l);
    }
    // Manifests only visit subset images.
    let mp = out.join("manifest-random-over.parquet");
    let m = read_frame(&mp, None).unwrap();
    let set: std::collections::HashSet<u32> = si.iter().copied().collect();
    assert!(u32_column(&m, &mp, "index").unwrap().iter().all(|i| set.contains(i)));
    assert_eq!(m.height(), 2 * 10 * 100);

    // Determinism: a second build gives byte-identical files.
    let out2 = tmp.path().join("ds2");
    build(&config(&src, &out2, lt_profile()), &NoProgress).unwrap();
    assert_eq!(dir_bytes(&out), dir_bytes(&out2));
    // Another seed changes the subset and manifests but not the samples.
    let out3 = tmp.path().join("ds3");
    let mut c3 = config(&src, &out3, lt_profile());
    c3.seed = 10;
    build(&c3, &NoProgress).unwrap();
    let (a, b) = (dir_bytes(&out), dir_bytes(&out3));
    // [0] is the marker, [1] dataset.json, [2..5] the manifests.
    assert_eq!((&a[5].0, &a[6].0), (&"samples.parquet".to_string(), &"subset.parquet".to_string()));
    assert_eq!(a[5], b[5], "samples.parquet does not depend on the seed");
    assert_ne!(a[6], b[6], "subset.parquet does");
}

#[test]
fn existing_output_is_refused_and_errors_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    cifar10_dir(&src, 20, 10);
    let out = tmp.path().join("ds");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let e = build(&config(&src, &out, Profile::Balanced), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("exists and is not empty") && e.contains("--force"), "{e}");
    assert!(out.join("keep.txt").exists());
    // --force does not replace it either: lt-data did not write it (issue 13, defect 1).
    let mut c = config(&src, &out, Profile::Balanced);
    c.force = true;
    let e = build(&c, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("refusing to replace") && e.contains(".lt-output.json"), "{e}");
    assert_eq!(dir_bytes(&out).len(), 1);
    // A dataset lt-data wrote is replaced with --force.
    std::fs::remove_file(out.join("keep.txt")).unwrap();
    build(&c, &NoProgress).unwrap();
    let first = dir_bytes(&out);
    c.seed += 1;
    build(&c, &NoProgress).unwrap();
    assert_ne!(dir_bytes(&out), first);
    assert!(!partial_dir(&out).exists());
    // A profile error after reading the source: nothing written, no .partial left.
    let out2 = tmp.path().join("ds-bad");
    let e = build(&config(&src, &out2, Profile::Counts(vec![1000; 10])), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("requested"), "{e}");
    assert!(!out2.exists() && !partial_dir(&out2).exists());
    // A corrupt source file: the same.
    std::fs::write(src.join("data_batch_2.bin"), [0u8; 10]).unwrap();
    let e = build(&config(&src, &out2, Profile::Balanced), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("data_batch_2.bin"), "{e}");
    assert!(!out2.exists() && !partial_dir(&out2).exists());
}

fn synthetic_ds(dir: &Path) -> PathBuf {
    let out = dir.join("syn");
    let cfg = BuildConfig {
        source_text: "synthetic:100".into(),
        source: SourceSpec::Synthetic(100),
        source_options: SourceOptions { test_per_class: 10, ..SourceOptions::default() },
        profile: ProfileSpec::Ready(Profile::Counts(vec![100, 90, 80, 70, 60, 50, 40, 30, 20, 10])),
        seed: 1,
        val_per_class: 0,
        strategies: vec![Strategy::Sqrt],
        epochs: 3,
        out: out.clone(),
        force: false,
    };
    build(&cfg, &NoProgress).unwrap();
    out
}

#[test]
fn parquet_reads_unchanged_in_pyarrow_duckdb_and_polars() {
    let tmp = tempfile::tempdir().unwrap();
    let out = synthetic_ds(tmp.path());
    let data = lt_data::source::synthetic::generate(100, 10, 0);
    let code = r#"
import sys, hashlib, pyarrow.parquet as pq, duckdb, polars as pl
d = sys.argv[1]
t = pq.read_table(f"{d}/samples.parquet")
print("schema", ",".join(f"{f.name}:{f.type}" for f in t.schema))
imgs = t.column("image").to_pylist()
print("pyarrow", t.num_rows, hashlib.sha256(b"".join(imgs)).hexdigest())
s = pq.read_table(f"{d}/subset.parquet")
print("subset", ",".join(f"{f.name}:{f.type}" for f in s.schema), s.num_rows)
m = pq.read_table(f"{d}/manifest-sqrt.parquet")
print("manifest", ",".join(f"{f.name}:{f.type}" for f in m.schema), m.num_rows)
con = duckdb.connect()
r = con.execute(f"select count(*), sum(octet_length(image)), count(distinct index) from '{d}/samples.parquet' where split = 'train'").fetchone()
print("duckdb", *r)
r = con.execute(f"select epoch, count(*) from '{d}/manifest-sqrt.parquet' group by epoch order by epoch").fetchall()
print("duckdb-epochs", *[f"{e}:{n}" for e, n in r])
df = pl.read_parquet(f"{d}/samples.parquet")
print("polars", df.height, dict(df.schema)["label"], hashlib.sha256(b"".join(df["image"].to_list())).hexdigest())
"#;
    let outp = run_python(code, &[out.to_str().unwrap()]);
    let mut all = data.train.images.clone();
    all.extend_from_slice(&data.test.images);
    let want = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&all))
    };
    let lines: Vec<&str> = outp.lines().collect();
    assert_eq!(lines[0], "schema split:string,index:uint32,label:uint16,image:binary", "{outp}");
    assert_eq!(lines[1], format!("pyarrow 1100 {want}"), "{outp}");
    assert_eq!(lines[2], "subset index:uint32,label:uint16 550", "{outp}");
    assert_eq!(lines[3], "manifest epoch:uint32,position:uint32,index:uint32 1650", "{outp}");
    assert_eq!(lines[4], format!("duckdb 1000 {} 1000", 1000 * 3072), "{outp}");
    assert_eq!(lines[5], "duckdb-epochs 0:550 1:550 2:550", "{outp}");
    assert_eq!(lines[6], format!("polars 1100 UInt16 {want}"), "{outp}");
}

#[test]
fn cifar100_build_maps_records_and_round_trips_images() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("c100");
    std::fs::create_dir_all(&src).unwrap();
    let recs = crate::helpers::records(300, 5, 100);
    let mut bytes = Vec::new();
    for (l, img) in &recs {
        bytes.extend_from_slice(&[l / 5, *l]);
        bytes.extend_from_slice(img);
    }
    std::fs::write(src.join("train.bin"), &bytes).unwrap();
    std::fs::write(src.join("test.bin"), &bytes[..3074 * 7]).unwrap();
    let out = tmp.path().join("ds");
    let cfg = BuildConfig {
        source_text: format!("cifar100:{}", src.display()),
        source: SourceSpec::Cifar100(src.clone()),
        source_options: SourceOptions { coarse: true, ..SourceOptions::default() },
        profile: ProfileSpec::Ready(Profile::Balanced),
        seed: 0,
        val_per_class: 0,
        strategies: vec![Strategy::Instance],
        epochs: 1,
        out: out.clone(),
        force: false,
    };
    let meta = build(&cfg, &NoProgress).unwrap();
    assert_eq!(meta.class_names.len(), 20);
    assert_eq!(meta.source_counts.iter().sum::<u64>(), 300);
    let p = out.join("samples.parquet");
    let df = read_frame(&p, None).unwrap();
    let lab = u16_column(&df, &p, "label").unwrap();
    let img: Vec<Vec<u8>> = df.column("image").unwrap().binary().unwrap().iter().map(|b| b.unwrap().to_vec()).collect();
    assert_eq!(img.len(), 307);
    for (row, (l, i)) in lab.iter().zip(&img).enumerate() {
        let (want_l, want_i) = &recs[if row < 300 { row } else { row - 300 }];
        assert_eq!(u16::from(want_l / 5), *l, "row {row}");
        assert_eq!(want_i, i, "row {row}");
    }
}
