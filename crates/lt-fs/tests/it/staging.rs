use std::path::Path;

use lt_fs::{FsError, MARKER_FILE, Marker, MarkerState, Owner, Staging, staging_path};

const OWNER: Owner = Owner { tool: "test", format: "lt-test", legacy: Some(legacy) };

fn legacy(dir: &Path) -> bool {
    dir.join("legacy.json").is_file()
}

fn write_output(target: &Path, content: &str, force: bool) -> Result<(), FsError> {
    let staging = Staging::begin(target, OWNER, force)?;
    std::fs::write(staging.path().join("data.txt"), content).unwrap();
    staging.commit().map(|_| ())
}

fn read(target: &Path) -> String {
    std::fs::read_to_string(target.join("data.txt")).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// The marker of a complete output of [`OWNER`].
const COMPLETE: &str = r#"{"tool":"test","format":"lt-test","state":"complete"}"#;

/// A fresh temporary directory and the output path `out` inside it.
fn temp_target() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    (dir, target)
}

/// A fresh temporary directory and, inside it, the directory `name` made by [`dir_with`].
fn temp_dir_with(name: &str, file: &str, content: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    dir_with(&dir, file, content);
    (tmp, dir)
}

/// A forced write of `content` to `target`, then [`assert_alone`].
fn force_and_check(target: &Path, content: &str) {
    write_output(target, content, true).unwrap();
    assert_alone(target, content);
}

/// `target` holds `content`, and nothing is left beside it (no staging, nothing aside).
fn assert_alone(target: &Path, content: &str) {
    assert_eq!(read(target), content);
    assert_eq!(names(target.parent().unwrap()), [target.file_name().unwrap().to_str().unwrap()]);
}

/// Creates the directory `dir` holding one file, `name`, with `content`.
fn dir_with(dir: &Path, name: impl AsRef<Path>, content: &str) {
    std::fs::create_dir(dir).unwrap();
    std::fs::write(dir.join(name), content).unwrap();
}

#[test]
fn new_output_then_forced_replacement() {
    let (_tmp, target) = temp_target();
    write_output(&target, "one", false).unwrap();
    assert_eq!(read(&target), "one");
    let m = Marker::read(&target).unwrap();
    assert_eq!((m.tool.as_str(), m.format.as_str(), m.state), ("test", "lt-test", MarkerState::Complete));
    // Without --force an existing output is kept.
    assert!(matches!(write_output(&target, "two", false), Err(FsError::NotEmpty { .. })));
    assert_eq!(read(&target), "one");
    force_and_check(&target, "two");
}

#[test]
fn force_never_replaces_a_foreign_directory() {
    let (dir, target) = temp_dir_with("notes", "keep.txt", "mine");
    let err = write_output(&target, "x", true).unwrap_err();
    assert!(matches!(err, FsError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains(MARKER_FILE), "{err}");
    assert_eq!(names(&target), ["keep.txt"]);
    assert_eq!(names(dir.path()), ["notes"]);
    // A marker of another format does not make it ours either.
    std::fs::write(target.join(MARKER_FILE), r#"{"tool":"x","format":"lt-other","state":"complete"}"#).unwrap();
    assert!(matches!(write_output(&target, "x", true), Err(FsError::Foreign { .. })));
    assert!(target.join("keep.txt").is_file());
}

#[test]
fn an_older_lt_output_is_recognised_and_replaced() {
    let (_tmp, target) = temp_target();
    dir_with(&target, "legacy.json", "{}");
    write_output(&target, "new", true).unwrap();
    assert_eq!(names(&target), [MARKER_FILE, "data.txt"]);
}

#[test]
fn a_failed_attempt_leaves_the_old_output_and_no_staging() {
    let (_tmp, target) = temp_target();
    write_output(&target, "old", false).unwrap();
    {
        let staging = Staging::begin(&target, OWNER, true).unwrap();
        std::fs::write(staging.path().join("data.txt"), "half").unwrap();
        // dropped without commit: the operation failed
    }
    assert_alone(&target, "old");
}

#[test]
fn a_kept_staging_directory_resumes_and_blocks_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("run");
    let mut s = Staging::begin(&target, OWNER, false).unwrap();
    std::fs::write(s.path().join("data.txt"), "epoch 1").unwrap();
    s.discard_on_drop(false);
    drop(s); // as a kill would leave it
    assert!(Staging::interrupted(&target, &OWNER));
    let s = Staging::resume(&target, OWNER).unwrap().expect("an interrupted staging directory");
    assert_eq!(std::fs::read_to_string(s.path().join("data.txt")).unwrap(), "epoch 1");
    drop(s); // resumed ones are kept on failure
    assert!(Staging::interrupted(&target, &OWNER));
    let s = Staging::resume(&target, OWNER).unwrap().unwrap();
    s.commit().unwrap();
    assert_eq!(read(&target), "epoch 1");
    assert!(Staging::resume(&target, OWNER).unwrap().is_none());
}

#[test]
fn a_foreign_directory_at_the_staging_name_is_refused() {
    let (_tmp, target) = temp_target();
    let staging = staging_path(&target);
    dir_with(&staging, "mine.txt", "x");
    assert!(matches!(Staging::begin(&target, OWNER, true), Err(FsError::Foreign { .. })));
    assert!(matches!(Staging::resume(&target, OWNER), Err(FsError::Foreign { .. })));
    assert!(staging.join("mine.txt").is_file());
}

/// The states a kill can leave during a swap, and what the next run makes of them.
#[test]
fn every_state_a_killed_swap_leaves_recovers_to_one_complete_output() {
    let (dir, target) = temp_target();
    let aside = dir.path().join("out.old");
    let staging = staging_path(&target);

    // Fallback killed between its renames: the old output aside, the new one staged.
    write_output(&target, "old", false).unwrap();
    std::fs::rename(&target, &aside).unwrap();
    let s = Staging::resume(&target, OWNER).unwrap();
    assert!(s.is_none());
    assert_alone(&target, "old");

    // Killed while removing the old output after the swap: a half-removed complete directory
    // at the staging name, its marker still there.
    dir_with(&staging, MARKER_FILE, COMPLETE);
    assert!(Staging::resume(&target, OWNER).unwrap().is_none());
    assert_eq!(names(dir.path()), ["out"]);

    // The same at the aside name, with the new output in place.
    dir_with(&aside, MARKER_FILE, COMPLETE);
    force_and_check(&target, "new");
}

#[test]
fn links_inside_an_output_are_removed_not_followed() {
    let (dir, outside) = temp_dir_with("outside", "precious.txt", "x");
    let target = dir.path().join("out");
    let s = Staging::begin(&target, OWNER, false).unwrap();
    std::os::unix::fs::symlink(&outside, s.path().join("link")).unwrap();
    s.commit().unwrap();
    write_output(&target, "new", true).unwrap();
    assert!(outside.join("precious.txt").is_file());
}

/// A kill between creating the staging directory and writing its marker leaves an empty
/// directory (or one with the marker's temporary file): the next run takes it over.
#[test]
fn a_staging_directory_killed_before_its_marker_is_taken_over() {
    let (_tmp, target) = temp_target();
    let staging = staging_path(&target);
    std::fs::create_dir(&staging).unwrap();
    write_output(&target, "one", false).unwrap();
    dir_with(&staging, format!("{MARKER_FILE}.partial"), "{\"to");
    force_and_check(&target, "two");
}
