//! onnxruntime provisioning: the library really loads and runs a graph written by lt-graph,
//! and a missing library gives the actionable error, not a panic.

use std::path::PathBuf;
use std::process::Command;

use lt_graph::onnx::proto::DataType;
use lt_graph::onnx::{GraphBuilder, Tensor};
use lt_train::runtime::{LibrarySource, RuntimeError, locate_with, project_local_library};

#[test]
fn runs_a_graph_written_by_lt_graph() {
    // y = softmax(x · W) for a 2x3 input: a few ops, compared with a direct computation.
    let w: Vec<f32> = vec![0.5, -1.0, 2.0, 0.0, 1.5, -0.5];
    let x: Vec<f32> = vec![1.0, 2.0, 3.0, -1.0, 0.5, 2.0];
    let mut g = GraphBuilder::new("smoke");
    let xi = g.input("x", DataType::Float, &[2, 3]).unwrap();
    let wi = g.constant(&Tensor::f32(&[3, 2], w.clone()));
    let z = g.op("MatMul", &[&xi, &wi], &[]).unwrap();
    let y = g.op("Softmax", &[&z], &[("axis", lt_graph::onnx::Attr::Int(1))]).unwrap();
    g.output(&y, "y", DataType::Float, Some(&[2, 2])).unwrap();
    let bytes = lt_graph::onnx::encode(&g.finish());

    let mut session = lt_train::device::Device::Cpu.session(&bytes, 1).expect("onnxruntime session");
    let input = ort::value::Tensor::from_array(([2usize, 3], x.clone())).unwrap();
    let outputs = session.run(ort::inputs!["x" => input]).unwrap();
    let (shape, got) = outputs["y"].try_extract_tensor::<f32>().unwrap();
    assert_eq!(shape.to_vec(), vec![2, 2]);
    for r in 0..2 {
        let z: Vec<f32> = (0..2).map(|c| (0..3).map(|k| x[r * 3 + k] * w[k * 2 + c]).sum()).collect();
        let m = z[0].max(z[1]);
        let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
        for c in 0..2 {
            let want = e[c] / (e[0] + e[1]);
            assert!((got[r * 2 + c] - want).abs() < 1e-6, "row {r} col {c}: {} vs {want}", got[r * 2 + c]);
        }
    }
}

#[test]
fn env_var_wins_and_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.so");
    let err = locate_with(Some(missing), &[], false, || None).unwrap_err();
    assert!(matches!(err, RuntimeError::EnvPathMissing { .. }), "{err}");
    assert!(err.to_string().contains("ORT_DYLIB_PATH"), "{err}");

    let lib = dir.path().join("libonnxruntime.so");
    std::fs::write(&lib, b"").unwrap();
    let (path, source) = locate_with(Some(lib.clone()), &[], false, || None).unwrap();
    assert_eq!((path, source), (lib, LibrarySource::EnvVar));
}

#[test]
fn project_local_install_prefers_the_wanted_flavor() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    for flavor in ["cpu", "gpu"] {
        let lib = project_local_library(&root, flavor);
        std::fs::create_dir_all(lib.parent().unwrap()).unwrap();
        std::fs::write(&lib, b"").unwrap();
    }
    let (cpu, _) = locate_with(None, std::slice::from_ref(&root), false, || None).unwrap();
    let (gpu, _) = locate_with(None, std::slice::from_ref(&root), true, || None).unwrap();
    assert!(cpu.to_string_lossy().contains("/.ort/cpu/"), "{}", cpu.display());
    assert!(gpu.to_string_lossy().contains("/.ort/gpu/"), "{}", gpu.display());
}

#[test]
fn python_package_is_the_last_resort() {
    let py = PathBuf::from("/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1");
    let (path, source) = locate_with(None, &[PathBuf::from("/nonexistent-root")], false, || Some(py.clone())).unwrap();
    assert_eq!((path, source), (py, LibrarySource::PythonPackage));
}

#[test]
fn missing_library_gives_the_install_command_not_a_panic() {
    // A copy of the binary outside the checkout, run from an empty directory with no
    // ORT_DYLIB_PATH and no python3 on PATH: nothing can be found.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("lt-train");
    std::fs::copy(env!("CARGO_BIN_EXE_lt-train"), &exe).unwrap();
    let out = Command::new(&exe)
        .arg("doctor")
        .current_dir(dir.path())
        .env_remove("ORT_DYLIB_PATH")
        .env("PATH", dir.path().join("empty-path"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("onnxruntime not found"), "stderr: {stderr}");
    assert!(stderr.contains("bash scripts/install-ort.sh"), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn doctor_runs_against_the_installed_library() {
    let out = Command::new(env!("CARGO_BIN_EXE_lt-train")).arg("doctor").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("expected [5.5, 0.0]") && stdout.trim_end().ends_with("ok"), "{stdout}");
}
