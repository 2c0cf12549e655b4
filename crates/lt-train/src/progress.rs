//! How lt-train reports progress: the binary draws bars, tests and benches stay silent.

/// Where a run reports progress; the binary draws bars, tests stay silent.
pub trait Progress {
    fn message(&self, _text: &str) {}
    fn epoch_start(&self, _epoch: usize, _epochs: usize, _steps: usize) {}
    fn step(&self, _step: usize, _loss: f32, _images: usize) {}
    fn epoch_end(&self, _summary: &EpochSummary) {}
}

/// No progress output.
#[derive(Debug, Clone, Copy)]
pub struct Silent;
impl Progress for Silent {}

/// What one epoch measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EpochSummary {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub test_balanced_accuracy: f64,
    pub val_balanced_accuracy: Option<f64>,
    pub seconds: f64,
    pub images_per_second: f64,
}
