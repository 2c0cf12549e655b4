use std::path::Path;

use lt_fs::FsError;
use lt_fs::guard::{check_not_protected, resolve_output};

fn protected(r: Result<impl std::fmt::Debug, FsError>) -> &'static str {
    match r {
        Err(FsError::Protected { what, .. }) => what,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn root_home_cwd_and_its_ancestors_are_refused() {
    assert_eq!(protected(check_not_protected(Path::new("/"))), "the root directory");
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(protected(check_not_protected(&cwd)), "the current directory");
    assert_eq!(protected(check_not_protected(cwd.parent().unwrap())), "an ancestor of the current directory");
    if let Some(home) = std::env::var_os("HOME").filter(|h| Path::new(h).is_dir()) {
        let what = protected(check_not_protected(Path::new(&home)));
        assert!(what == "the home directory" || what.contains("current directory"), "{what}");
    }
}

#[test]
fn names_that_are_no_directory_name_are_refused_before_any_access() {
    // `resolve_output` refuses these before touching the file system.
    for p in ["/", ".", "..", "a/.."] {
        assert!(matches!(resolve_output(Path::new(p)), Err(FsError::Protected { .. })), "{p}");
    }
}

#[test]
fn links_and_files_are_no_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(resolve_output(&file), Err(FsError::Protected { what: "not a directory", .. })));
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path(), &link).unwrap();
    assert!(matches!(resolve_output(&link), Err(FsError::Protected { .. })));
    // A fresh name below a temporary directory is fine.
    let ok = resolve_output(&dir.path().join("new/out")).unwrap();
    assert!(ok.ends_with("new/out") && ok.is_absolute());
}
