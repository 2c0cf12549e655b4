//! Long-tail profiles: exact count tables, seeded selection, bad inputs.

use lt_data::profile::{
    Profile, SEED_COUNTS, check_indices, exp_counts, read_indices_file, select_subset, step_counts, target_counts,
};

use crate::helpers::{balanced_labels, count, names};

#[test]
fn exp_tables_match_cifar10_lt() {
    let t = |f| exp_counts(10, 5000, f).unwrap();
    assert_eq!(t(100.0), [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
    assert_eq!(t(100.0).iter().sum::<u64>(), 12406);
    assert_eq!(t(50.0), [5000, 3237, 2096, 1357, 878, 568, 368, 238, 154, 100]);
    assert_eq!(t(10.0), [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]);
    assert_eq!(t(1.0), [5000; 10]);
}

#[test]
fn step_table() {
    assert_eq!(step_counts(10, 5000, 100.0).unwrap(), [5000, 5000, 5000, 5000, 5000, 50, 50, 50, 50, 50]);
    assert_eq!(step_counts(5, 1000, 3.0).unwrap(), [1000, 1000, 333, 333, 333]);
}

#[test]
fn imbalance_below_one_is_refused() {
    for bad in [0.5, 0.0, -3.0, f64::NAN, f64::INFINITY] {
        let e = exp_counts(10, 5000, bad).unwrap_err().to_string();
        assert!(e.contains("must be a finite number >= 1"), "{e}");
        assert!(step_counts(10, 5000, bad).is_err());
    }
}

#[test]
fn select_exp_gives_exact_counts_and_sorted_unique_indices() {
    let labels = balanced_labels(5000);
    let p = Profile::Exp { imbalance: 100.0, n_max: None, shuffle_classes: false };
    let idx = select_subset(&labels, &names(10), &p, 7).unwrap();
    assert!(idx.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    let counts = count(idx.iter().map(|&i| labels[i as usize]), 10);
    assert_eq!(counts, [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
    // Another seed picks other images with the same counts.
    let idx2 = select_subset(&labels, &names(10), &p, 8).unwrap();
    assert_ne!(idx, idx2);
    assert_eq!(count(idx2.iter().map(|&i| labels[i as usize]), 10), counts);
    // Same seed: same subset.
    assert_eq!(idx, select_subset(&labels, &names(10), &p, 7).unwrap());
}

#[test]
fn n_max_defaults_to_smallest_class_and_can_be_set() {
    let mut labels = balanced_labels(100);
    labels.extend(std::iter::repeat_n(0u16, 50)); // class 0 has 150
    let p = Profile::Step { imbalance: 10.0, n_max: None, shuffle_classes: false };
    let t = target_counts(&p, &count(labels.iter().copied(), 10), 0).unwrap();
    assert_eq!(t, [100, 100, 100, 100, 100, 10, 10, 10, 10, 10]);
    let p = Profile::Exp { imbalance: 2.0, n_max: Some(150), shuffle_classes: false };
    let e = select_subset(&labels, &names(10), &p, 0).unwrap_err().to_string();
    assert!(e.contains("class 1 (c1): 138 images requested") && e.contains("only 100"), "{e}");
}

#[test]
fn shuffled_classes_permute_the_table() {
    let labels = balanced_labels(5000);
    let p = Profile::Exp { imbalance: 100.0, n_max: None, shuffle_classes: true };
    let idx = select_subset(&labels, &names(10), &p, 3).unwrap();
    let mut counts = count(idx.iter().map(|&i| labels[i as usize]), 10);
    assert_ne!(counts, [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50], "seed 3 permutes");
    counts.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(counts, [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
}

#[test]
fn seed_counts_profile() {
    let labels = balanced_labels(5000);
    let idx = select_subset(&labels, &names(10), &Profile::Counts(SEED_COUNTS.to_vec()), 0).unwrap();
    assert_eq!(idx.len(), 23654);
    assert_eq!(count(idx.iter().map(|&i| labels[i as usize]), 10), SEED_COUNTS);
}

#[test]
fn counts_too_large_or_wrong_length_are_refused() {
    let labels = balanced_labels(100);
    let mut c = vec![10u64; 10];
    c[4] = 101;
    let e = select_subset(&labels, &names(10), &Profile::Counts(c), 0).unwrap_err().to_string();
    assert!(e.contains("class 4 (c4): 101 images requested") && e.contains("only 100"), "{e}");
    let e = select_subset(&labels, &names(10), &Profile::Counts(vec![1, 2]), 0).unwrap_err().to_string();
    assert!(e.contains("2 numbers") && e.contains("10 classes"), "{e}");
}

#[test]
fn balanced_takes_everything() {
    let labels = balanced_labels(30);
    let idx = select_subset(&labels, &names(10), &Profile::Balanced, 0).unwrap();
    assert_eq!(idx, (0..300).collect::<Vec<u32>>());
}

#[test]
fn seed_index_file_gives_seed_counts_on_cifar_like_labels() {
    // The seed project's list (a copy ships in pipelines/) indexes the real CIFAR-10 train
    // split; here we check it parses, is in range and unique, and has 23,654 entries.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/seed-dataidx.txt");
    let idx = read_indices_file(&path, 50_000).unwrap();
    assert_eq!(idx.len(), 23_654);
    check_indices(&idx, 50_000).unwrap();
}

#[test]
fn indices_out_of_range_or_duplicated_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("idx.txt");
    std::fs::write(&f, "1\n2\n\n2\n").unwrap();
    let e = read_indices_file(&f, 10).unwrap_err().to_string();
    assert!(e.contains("idx.txt:4") && e.contains("index 2 is duplicated (first on line 2)"), "{e}");
    std::fs::write(&f, "1\n10\n").unwrap();
    let e = read_indices_file(&f, 10).unwrap_err().to_string();
    assert!(e.contains("idx.txt:2") && e.contains("index 10 is out of range"), "{e}");
    std::fs::write(&f, "1\nx7\n").unwrap();
    let e = read_indices_file(&f, 10).unwrap_err().to_string();
    assert!(e.contains("idx.txt:2") && e.contains("`x7`"), "{e}");
    // The library check on already parsed indices.
    assert!(check_indices(&[3, 3], 10).unwrap_err().to_string().contains("appears twice"));
    assert!(check_indices(&[11], 10).unwrap_err().to_string().contains("out of range"));
    let labels = balanced_labels(1);
    let p = Profile::Indices { origin: "x".into(), indices: vec![9, 0, 4] };
    // An explicit list is taken as given, classes it leaves empty included.
    assert_eq!(select_subset(&labels, &names(10), &p, 0).unwrap(), [0, 4, 9]);
}

/// An imbalance factor above n_max rounds the tail down to 0 images: refused with the class,
/// the factor and n_max named (it used to leave the class empty without a word).
#[test]
fn classes_left_without_images_are_refused() {
    let labels = balanced_labels(10);
    let p = Profile::Exp { imbalance: 1e308, n_max: None, shuffle_classes: false };
    let e = select_subset(&labels, &names(10), &p, 0).unwrap_err().to_string();
    assert!(
        e.contains("class 1 (c1) has 0 training images: imbalance factor 1e308 exceeds n_max 10")
            && e.contains("cannot be learned"),
        "{e}"
    );
    let p = Profile::Step { imbalance: 20.0, n_max: Some(10), shuffle_classes: false };
    let e = select_subset(&labels, &names(10), &p, 0).unwrap_err().to_string();
    assert!(e.contains("class 5 (c5) has 0 training images: imbalance factor 20 exceeds n_max 10"), "{e}");
    // At IF = n_max the tail keeps one image.
    let p = Profile::Exp { imbalance: 10.0, n_max: None, shuffle_classes: false };
    assert_eq!(count(select_subset(&labels, &names(10), &p, 0).unwrap().iter().map(|&i| labels[i as usize]), 10)[9], 1);
    // Shuffled classes name the class that actually gets 0.
    let p = Profile::Exp { imbalance: 11.0, n_max: None, shuffle_classes: true };
    let t = target_counts(&p, &count(labels.iter().copied(), 10), 3).unwrap();
    let zero = t.iter().position(|&n| n == 0).unwrap();
    let e = select_subset(&labels, &names(10), &p, 3).unwrap_err().to_string();
    assert!(e.contains(&format!("class {zero} (c{zero}) has 0 training images")), "{e}");
    // Explicit counts of 0.
    let mut c = vec![5u64; 10];
    c[7] = 0;
    let e = select_subset(&labels, &names(10), &Profile::Counts(c), 0).unwrap_err().to_string();
    assert!(e.contains("class 7 (c7) has 0 training images: --counts gives it 0"), "{e}");
    // A class the source lacks.
    let no3: Vec<u16> = labels.iter().copied().filter(|&l| l != 3).collect();
    let e = select_subset(&no3, &names(10), &Profile::Balanced, 0).unwrap_err().to_string();
    assert!(e.contains("class 3 (c3) has 0 training images: the source's train split has no image of it"), "{e}");
}

/// `--indices /dev/zero` grew to 24 GB. Reading stops at a limit derived from the split size.
#[test]
fn indices_file_is_read_within_a_bound() {
    use lt_data::profile::indices_file_limit;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("idx.txt");
    // A sparse 1 GiB file of NULs (like /dev/zero, but a regular file).
    std::fs::File::create(&f).unwrap().set_len(1 << 30).unwrap();
    let (r, usage) = crate::fuzz::measure(|| read_indices_file(&f, 50_000));
    let e = r.unwrap_err().to_string();
    let limit = indices_file_limit(50_000);
    assert_eq!(limit, 50_000 * 64 + (1 << 20));
    assert!(
        e.contains("idx.txt: larger than 4248576 bytes, the limit for the indices of a train split of 50000"),
        "{e}"
    );
    assert!(usage.largest < 1 << 20, "{usage:?}");
    // A text file one byte over the limit, and one at it.
    let line = "0\n";
    let at = "#".repeat(limit as usize - line.len()) + "\n" + &line[..1];
    std::fs::write(&f, &at).unwrap();
    assert_eq!(read_indices_file(&f, 50_000).unwrap(), [0]);
    std::fs::write(&f, at + "\n").unwrap();
    assert!(read_indices_file(&f, 50_000).unwrap_err().to_string().contains("larger than"));
    // Not text.
    std::fs::write(&f, b"1\n\xff\xfe\n").unwrap();
    let e = read_indices_file(&f, 10).unwrap_err().to_string();
    assert!(e.contains("idx.txt: not UTF-8 text (invalid byte at offset 2)"), "{e}");
}
