//! Pipeline files: every shipped file resolves; unknown keys and bad values are errors that
//! name the key's path; overrides; the resolved settings as `--show-config` prints them.

use std::path::Path;

use lt_format::config::{LossKind, WeightsKind, WeightsNormalize};
use lt_pipeline::stamp::hash_json;
use lt_pipeline::{Overrides, PipelineError, load};

use crate::fixture::{lt_run, repo_root, text};

fn pipeline_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("pipelines"))
        .expect("pipelines/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_pipeline_file_resolves_and_show_config_prints_it() {
    let root = repo_root();
    let files = pipeline_files();
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for want in ["demo.toml", "seed-cifar10.toml", "cifar10-lt-100.toml", "cifar100-lt-100.toml"] {
        assert!(names.iter().any(|n| n == want), "pipelines/{want} is missing; found {names:?}");
    }
    for file in &files {
        let p = load(file, &Overrides::default(), &root).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(!p.experiment.is_empty());
        for e in &p.experiment {
            e.config.validate().unwrap();
            assert_eq!(e.config.data, p.out.join("data"));
            let run_dir = p.out.join("runs").join(&e.name);
            match e.seed {
                Some(seed) => assert_eq!(e.config.out, run_dir.join(format!("seed-{seed}"))),
                None => assert_eq!(e.config.out, run_dir),
            }
            if let Some(r) = &e.config.resample {
                assert!(p.data.resample.contains(r), "{}: manifest {r} not built", file.display());
            }
        }
        // The binary prints the same resolution as TOML that reads back.
        let o = lt_run(&root, &["run", file.to_str().unwrap(), "--show-config"]);
        assert!(o.status.success(), "{}: {}", file.display(), text(&o));
        let shown: toml::Table = String::from_utf8_lossy(&o.stdout).parse().expect("--show-config prints TOML");
        let exps = shown["experiment"].as_array().expect("experiment list");
        assert_eq!(exps.len(), p.experiment.len());
        for (shown, e) in exps.iter().zip(&p.experiment) {
            assert_eq!(shown["name"].as_str(), Some(e.name.as_str()));
            // Every TrainConfig value appears, fully resolved (defaults included).
            let cfg = shown["config"].as_table().expect("config table");
            assert_eq!(cfg["epochs"].as_integer(), Some(e.config.epochs as i64), "{}", file.display());
            assert!(cfg.contains_key("momentum") && cfg.contains_key("weight_decay") && cfg.contains_key("loss"));
        }
        assert_eq!(shown["data"]["epochs"].as_integer().map(|v| v as u32), p.data.epochs);
    }
}

#[test]
fn shipped_pipelines_say_what_the_issue_asks() {
    let root = repo_root();
    let load_one = |name: &str| load(&root.join("pipelines").join(name), &Overrides::default(), &root).unwrap();

    let demo = load_one("demo.toml");
    let names: Vec<_> = demo.experiment.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["baseline", "resample", "reweight", "ldam-drw", "logit-adjusted"]);
    assert!(demo.data.source.starts_with("synthetic:"));
    assert!(demo.experiment.iter().all(|e| e.config.arch.as_deref() == Some("densenet-tiny")));
    assert!(demo.experiment.iter().all(|e| e.config.ep == lt_format::config::Ep::Cpu));
    assert_eq!(demo.experiment[1].config.resample.as_deref(), Some("class-balanced"));
    assert_eq!(demo.experiment[2].config.weights, WeightsKind::EffectiveNumber);
    assert_eq!(demo.experiment[3].config.loss, LossKind::Ldam);
    assert!(demo.experiment[3].config.drw.is_some());
    assert_eq!(demo.experiment[4].config.loss, LossKind::BalancedSoftmax);
    assert_eq!(demo.data.imbalance, Some(100.0));
    assert!(demo.data.val_per_class.is_some());
    assert_eq!(demo.data.resample, ["class-balanced"]);

    let seed = load_one("seed-cifar10.toml");
    let counts = seed.data.counts.clone().unwrap();
    assert_eq!(counts, [1865, 2677, 3602, 916, 4354, 4061, 892, 1718, 3417, 152]);
    let n: u64 = counts.iter().sum();
    assert_eq!(n, 23654);
    let unnormalised = seed.experiment.iter().find(|e| e.config.weights_normalize == WeightsNormalize::None).unwrap();
    assert!((unnormalised.config.beta - (n as f64 - 1.0) / n as f64).abs() < 1e-15);
    assert!(seed.experiment.iter().all(|e| e.config.arch.as_deref() == Some("densenet161")
        && e.config.epochs == 75
        && e.config.batch_size == 256
        && e.config.weight_decay == 5e-4));

    for (file, kind) in [("cifar10-lt-100.toml", "cifar10:"), ("cifar100-lt-100.toml", "cifar100:")] {
        let p = load_one(file);
        assert!(p.data.source.starts_with(kind) && p.data.fetch, "{file}");
        assert_eq!(p.data.imbalance, Some(100.0));
        let e = p.experiment.iter().find(|e| e.name == "ldam-drw").unwrap();
        // LDAM-DRW's cifar_train.py: DRW and x0.01 steps after 0-based epochs 160 and 180.
        assert_eq!((e.config.drw, e.config.epochs, e.config.warmup), (Some(161), 200, 5));
        assert_eq!(e.config.schedule.to_string(), "step:162,182*0.01");
        assert!(p.experiment.iter().any(|e| e.config.loss == LossKind::BalancedSoftmax));
        assert!(p.experiment.iter().any(|e| e.config.loss == LossKind::Focal));
        // The recipes: DDC's 400-epoch SAM + AutoAugment + Cutout runs, mixup, cRT.
        let e = p.experiment.iter().find(|e| e.name == "ldam-drw-sam-aa").unwrap();
        assert_eq!((e.config.drw, e.config.epochs, e.config.warmup, e.config.cutout), (Some(321), 400, 10, Some(16)));
        assert_eq!(e.config.schedule.to_string(), "step:321,361*0.01");
        assert!(e.config.sam.is_some() && e.config.loss == LossKind::Ldam);
        for name in ["ce-sam-aa", "vs-sam-aa", "mixup", "crt", "logit-adjusted"] {
            assert!(p.experiment.iter().any(|e| e.name == name), "{file}: no experiment {name}");
        }
    }
}

fn write(dir: &Path, body: &str) -> std::path::PathBuf {
    let f = dir.join("p.toml");
    std::fs::write(&f, body).unwrap();
    f
}

const BASE: &str = "[data]\nsource = \"synthetic:10\"\nimbalance = 5\n[train]\narch = \"densenet-tiny\"\n";

fn err_of(body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), body);
    match load(&f, &Overrides::default(), dir.path()) {
        Ok(_) => panic!("expected an error for:\n{body}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_keys_are_errors_naming_their_path() {
    let cases = [
        (format!("{BASE}lerning_rate = 0.1\n[[experiment]]\nname = \"a\"\n"), "`train.lerning_rate`"),
        (
            format!("{BASE}[[experiment]]\nname = \"a\"\n[[experiment]]\nname = \"b\"\ndrv = 3\n"),
            "`experiment[1] (b).drv`",
        ),
        (format!("sorce = 1\n{BASE}[[experiment]]\nname = \"a\"\n"), "`sorce`"),
        (format!("{BASE}[[experiment]]\nname = \"a\"\n[report]\ntitel = \"x\"\n"), "`report.titel`"),
        (format!("{BASE}[[experiment]]\nname = \"a\"\n").replace("imbalance", "imbalanse"), "`data.imbalanse`"),
    ];
    for (body, path) in cases {
        let e = err_of(&body);
        assert!(e.contains(path) && e.contains("unknown key") && e.contains("p.toml"), "{path}: {e}");
    }
    // Keys the pipeline owns.
    let e = err_of(&format!("{BASE}out = \"x\"\n[[experiment]]\nname = \"a\"\n"));
    assert!(e.contains("`train.out`") && e.contains("the pipeline sets it"), "{e}");
}

#[test]
fn bad_values_name_the_setting_and_what_to_do() {
    let e = err_of(&format!("{BASE}epochs = 4\n[[experiment]]\nname = \"x\"\ndrw = 9\n"));
    assert!(e.contains("experiment[0] (x).drw") && e.contains("between 1 and --epochs"), "{e}");
    let e = err_of(&format!("{BASE}[[experiment]]\nname = \"x\"\nloss = \"hinge\"\n"));
    assert!(e.contains("experiment[0] (x)") && e.contains("hinge"), "{e}");
    let e = err_of(&format!("{BASE}[[experiment]]\nname = \"x\"\nresample = \"smote\"\n"));
    assert!(e.contains("resample") && e.contains("class-balanced"), "{e}");
    let e = err_of(&format!("{BASE}[[experiment]]\nname = \"x\"\n[[experiment]]\nname = \"x\"\n"));
    assert!(e.contains("used twice"), "{e}");
    let e = err_of(&format!("{BASE}[[experiment]]\nname = \"../x\"\n"));
    assert!(e.contains("experiment[0].name"), "{e}");
    let e = err_of(&BASE.replace("imbalance = 5\n", ""));
    assert!(e.contains("data.imbalance"), "{e}");
    let e = err_of(BASE);
    assert!(e.contains("[[experiment]]"), "{e}");
    let e = err_of(&format!("{BASE}[[experiment]]\nname = \"x\"\n").replace("synthetic:10", "mnist:/x"));
    assert!(e.contains("data.source") && e.contains("mnist"), "{e}");
    let e = err_of(&format!("{BASE}[[experiment]]\nname = \"x\"\n").replace("[data]\n", "[data]\nfetch = true\n"));
    assert!(e.contains("data.fetch"), "{e}");
    assert!(matches!(
        load(Path::new("/nonexistent/p.toml"), &Overrides::default(), Path::new("/")),
        Err(PipelineError::Io { .. })
    ));
}

#[test]
fn overrides_and_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        &format!(
            "{BASE}epochs = 3\n[[experiment]]\nname = \"a\"\n[[experiment]]\nname = \"b\"\nresample = \"sqrt\"\nepochs = 5\n"
        ),
    );
    let p = load(&f, &Overrides::default(), dir.path()).unwrap();
    assert_eq!(p.name, "p");
    assert_eq!(p.out, dir.path().join("out/p"));
    assert_eq!(p.data.resample, ["sqrt"]);
    assert_eq!(p.data.epochs, Some(5), "manifest epochs default to the longest experiment");
    assert_eq!((p.experiment[0].config.epochs, p.experiment[1].config.epochs), (3, 5));
    assert_eq!(p.experiment[0].config.lr, lt_format::config::TrainConfig::default().lr);

    let o = Overrides {
        source: Some("cifar10:rel/cifar".into()),
        out: Some("elsewhere".into()),
        set: vec!["train.lr=0.01".into(), "experiment.b.epochs=7".into(), "data.imbalance=20".into()],
    };
    let p = load(&f, &o, dir.path()).unwrap();
    assert_eq!(p.data.source, format!("cifar10:{}", dir.path().join("rel/cifar").display()));
    assert!(!p.data.fetch);
    assert_eq!(p.out, dir.path().join("elsewhere"));
    assert_eq!(p.experiment[0].config.lr, 0.01);
    assert_eq!(p.experiment[1].config.epochs, 7);
    assert_eq!(p.data.imbalance, Some(20.0));
    for bad in ["train.lr", "experiment.zz.lr=1", "nosuch.a.b=1"] {
        let o = Overrides { set: vec![bad.into()], ..Default::default() };
        let e = load(&f, &o, dir.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("--set {bad}")), "{e}");
    }
}

#[test]
fn stamp_hashes_ignore_key_order_but_not_values() {
    let a = serde_json::json!({"a": 1, "b": {"x": [1, 2], "y": "z"}});
    let b: serde_json::Value = serde_json::from_str(r#"{"b": {"y": "z", "x": [1, 2]}, "a": 1}"#).unwrap();
    assert_eq!(hash_json(&a), hash_json(&b));
    let c = serde_json::json!({"a": 1, "b": {"x": [2, 1], "y": "z"}});
    assert_ne!(hash_json(&a), hash_json(&c));
    assert_eq!(hash_json(&a).len(), 64);
}

#[test]
fn seeds_run_every_experiment_once_per_seed_under_one_name() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.toml");
    let base = "name = \"s\"\nout = \"o\"\n[data]\nsource = \"synthetic:40\"\nimbalance = 10\n[train]\narch = \"densenet-tiny\"\n[[experiment]]\nname = \"ce\"\n[[experiment]]\nname = \"ldam\"\nloss = \"ldam\"\n";
    std::fs::write(&file, format!("seeds = [3, 1]\n{base}")).unwrap();
    let p = load(&file, &Overrides::default(), tmp.path()).unwrap();
    let ids: Vec<String> = p.experiment.iter().map(|e| e.run_id()).collect();
    assert_eq!(ids, ["ce.seed-3", "ce.seed-1", "ldam.seed-3", "ldam.seed-1"]);
    for e in &p.experiment {
        let seed = e.seed.unwrap();
        assert_eq!(e.config.seed, seed);
        assert_eq!(e.config.out, p.out.join("runs").join(&e.name).join(format!("seed-{seed}")));
    }
    // The dataset keeps its own seed.
    assert_eq!(p.data.seed, 0);

    for (seeds, want) in [
        ("seeds = []", "list 1 to"),
        ("seeds = [1, 1]", "seed 1 is listed twice"),
        ("seeds = [-1]", "expected a list of seeds"),
        ("seeds = \"0,1\"", "expected a list of seeds"),
    ] {
        std::fs::write(&file, format!("{seeds}\n{base}")).unwrap();
        let err = load(&file, &Overrides::default(), tmp.path()).unwrap_err().to_string();
        assert!(err.contains("seeds") && err.contains(want), "{seeds}: {err}");
    }
    std::fs::write(&file, format!("seeds = [0]\n{base}").replace("loss = \"ldam\"", "loss = \"ldam\"\nseed = 4"))
        .unwrap();
    let err = load(&file, &Overrides::default(), tmp.path()).unwrap_err().to_string();
    assert!(err.contains("ldam") && err.contains("seed"), "{err}");
}
