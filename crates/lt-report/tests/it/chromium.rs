use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::{report, two_runs};

/// Debian's `chromium` (installed by .ci/run), or `LT_CHROMIUM`. Missing is a failure: the
/// screenshot is the only check that a browser really renders the report.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("LT_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "chromium is not installed: run `apt-get install -y chromium` (.ci/run does) or set LT_CHROMIUM to the browser"
    );
}

fn screenshot(html: &Path, png: &Path, profile: &Path) {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,2000")
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromium");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("chromium did not finish the screenshot within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn near(p: &image::Rgb<u8>, c: [u8; 3]) -> bool {
    p.0.iter().zip(c).all(|(&a, b)| (i32::from(a) - i32::from(b)).abs() <= 6)
}

#[test]
fn headless_chromium_renders_the_report() {
    let f = two_runs(10);
    let (out, _) = report(&f);
    let png = f.root.join("report.png");
    screenshot(&out.join("index.html"), &png, &f.root.join("chromium-profile"));
    let img = image::open(&png).expect("decoding the screenshot").to_rgb8();
    assert_eq!(img.dimensions(), (1200, 2000));
    let total = img.pixels().len();
    let white = img.pixels().filter(|p| p.0.iter().all(|&v| v >= 250)).count();
    let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() >= 50, "only {} distinct colours: the page looks blank", colours.len());
    let ink = 1.0 - white as f64 / total as f64;
    assert!(ink > 0.03, "only {:.1}% of the screenshot is not white", ink * 100.0);
    // The figures themselves are drawn: the first two run colours fill bars of the class
    // distribution and the accuracy curves.
    for colour in [[31, 119, 180], [255, 127, 14]] {
        let n = img.pixels().filter(|p| near(p, colour)).count();
        assert!(n > 500, "colour {colour:?} covers {n} pixels: the SVG figures did not render");
    }
    // Both halves of the window have content (table and text at the top, figures below).
    let lower_ink = img.enumerate_pixels().filter(|(_, y, p)| *y >= 1000 && p.0.iter().any(|&v| v < 200)).count();
    assert!(lower_ink > 5000, "the lower half is blank ({lower_ink} dark pixels)");
}
