use lt_eval::{EvalError, ShotGroups, ShotSplit, shot_groups, try_shot_groups};

use crate::assert_close;

#[test]
fn default_thresholds_are_above_100_and_below_20() {
    // Boundaries: 101 is many, 100 and 20 are medium, 19 is few.
    let counts = [500, 100, 101, 20, 19, 0];
    let acc = [0.9, 0.5, 0.7, 0.4, 0.2, f64::NAN];
    let g = shot_groups(&counts, &acc, ShotSplit::default());
    assert_eq!(g.split.names(), ["many", "medium", "few"]);
    assert_eq!(g.groups[0].classes, vec![0, 2]);
    assert_eq!(g.groups[1].classes, vec![1, 3]);
    assert_eq!(g.groups[2].classes, vec![4, 5]);
    assert_eq!([g.groups[0].train_images, g.groups[1].train_images, g.groups[2].train_images], [601, 120, 19]);
    assert_close(g.groups[0].accuracy, 0.8);
    assert_close(g.groups[1].accuracy, 0.45);
    // Class 5 has no test samples (NaN accuracy) and is left out of the mean.
    assert_close(g.get("few").unwrap().accuracy, 0.2);
    assert_eq!(g.group_of_class(6), vec![0, 1, 0, 1, 2, 2]);
}

#[test]
fn configurable_thresholds() {
    let g = shot_groups(&[1000, 300, 50], &[1.0, 0.5, 0.0], ShotSplit::Thresholds { many_above: 500, few_below: 100 });
    assert_eq!(g.accuracies(), [1.0, 0.5, 0.0]);
}

#[test]
fn cifar10_lt_has_no_few_shot_class_but_thirds_split_it() {
    let counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];
    let acc: Vec<f64> = (0..10).map(|i| 1.0 - i as f64 / 10.0).collect();
    let g = shot_groups(&counts, &acc, ShotSplit::default());
    assert_eq!(g.groups[0].classes, (0..8).collect::<Vec<_>>());
    assert_eq!(g.groups[1].classes, vec![8, 9]);
    assert!(g.groups[2].classes.is_empty());
    assert!(g.groups[2].accuracy.is_nan(), "an empty group has NaN accuracy");

    let t = shot_groups(&counts, &acc, ShotSplit::Thirds);
    assert_eq!(t.split.names(), ["head", "mid", "tail"]);
    assert_eq!(t.groups[0].classes, vec![0, 1, 2, 3]);
    assert_eq!(t.groups[1].classes, vec![4, 5, 6]);
    assert_eq!(t.groups[2].classes, vec![7, 8, 9]);
    assert_close(t.groups[0].accuracy, (1.0 + 0.9 + 0.8 + 0.7) / 4.0);
    assert_close(t.groups[1].accuracy, (0.6 + 0.5 + 0.4) / 3.0);
    assert_close(t.groups[2].accuracy, (0.3 + 0.2 + 0.1) / 3.0);
}

#[test]
fn thirds_sort_by_count_with_ties_by_label() {
    let g = shot_groups(&[10, 30, 20, 30], &[0.1, 0.2, 0.3, 0.4], ShotSplit::Thirds);
    assert_eq!(g.groups[0].classes, vec![1, 3]);
    assert_eq!(g.groups[1].classes, vec![2]);
    assert_eq!(g.groups[2].classes, vec![0]);
    let sizes = |c: usize| {
        let g = shot_groups(&vec![7; c], &vec![0.5; c], ShotSplit::Thirds);
        g.groups.iter().map(|g| g.classes.len()).collect::<Vec<_>>()
    };
    assert_eq!(sizes(100), vec![34, 33, 33]);
    assert_eq!(sizes(10), vec![4, 3, 3]);
    assert_eq!(sizes(2), vec![1, 1, 0]);
    assert_eq!(sizes(0), vec![0, 0, 0]);
}

#[test]
fn length_mismatch_is_an_error_and_groups_round_trip_through_json() {
    let err = try_shot_groups(&[1, 2, 3], &[0.5], ShotSplit::Thirds).unwrap_err();
    assert!(matches!(err, EvalError::LengthMismatch { actual: 1, expected: 3, .. }), "{err}");
    let g = shot_groups(&[500, 50, 5], &[0.9, f64::NAN, 0.1], ShotSplit::default());
    let json = serde_json::to_string(&g).unwrap();
    assert!(json.contains("\"kind\":\"thresholds\",\"many_above\":100,\"few_below\":20"), "{json}");
    let back: ShotGroups = serde_json::from_str(&json).unwrap();
    assert!(back.groups[1].accuracy.is_nan());
    assert_eq!(back.groups[0], g.groups[0]);
}
