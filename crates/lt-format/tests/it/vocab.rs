use lt_format::Vocab;
use lt_format::vocab::{
    Augment, Ep, LossKind, LoweringName, Profile, Resampler, ShotMode, WeightsKind, WeightsNormalize,
};

fn round_trips<
    T: Vocab
        + std::str::FromStr<Err = lt_format::VocabError>
        + std::fmt::Display
        + PartialEq
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
>() {
    for &v in T::ALL {
        assert_eq!(v.name().parse::<T>().unwrap(), v);
        assert_eq!(v.to_string(), v.name());
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, format!("\"{}\"", v.name()));
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
        assert!(!v.doc().is_empty());
        for a in v.aliases() {
            assert_eq!(a.parse::<T>().unwrap(), v);
        }
    }
    let err = "no-such-name".parse::<T>().unwrap_err();
    assert_eq!(err.what, T::WHAT);
    for name in T::names() {
        assert!(err.to_string().contains(name), "{err} lists {name}");
    }
}

#[test]
fn every_vocabulary_round_trips_and_lists_its_names_on_error() {
    round_trips::<Ep>();
    round_trips::<LossKind>();
    round_trips::<WeightsKind>();
    round_trips::<WeightsNormalize>();
    round_trips::<Augment>();
    round_trips::<LoweringName>();
    round_trips::<ShotMode>();
    round_trips::<Profile>();
    round_trips::<Resampler>();
}

#[test]
fn logit_adjusted_is_balanced_softmax_by_another_name() {
    assert_eq!("logit-adjusted".parse::<LossKind>().unwrap(), LossKind::BalancedSoftmax);
    // Written under one name only.
    assert_eq!(LossKind::BalancedSoftmax.to_string(), "balanced-softmax");
}

#[test]
fn an_unknown_name_in_toml_names_the_valid_ones() {
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct T {
        loss: LossKind,
    }
    let err = toml::from_str::<T>("loss = \"cross-entropy\"").unwrap_err().to_string();
    assert!(err.contains("unknown loss `cross-entropy`; use one of ce, focal, ldam, balanced-softmax"), "{err}");
}
