//! Evaluating any ONNX image classifier on a dataset's test split (`lt-train eval`), with
//! optional post-hoc logit adjustment (Menon et al. 2021): predict `argmax_c z_c − τ·log π_c`
//! with π the training class prior, τ given or chosen on validation rows (never on test).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lt_eval::{ClassificationReport, ConfusionMatrix, classification_report};
use lt_graph::onnx::proto::{ModelProto, tensor_shape_proto::dimension::Value, type_proto};
use ort::session::Session;
use ort::value::Tensor;

use crate::dataset::{Dataset, Split};
use crate::device::Device;
use crate::error::TrainError;
use crate::loader::{Augment, BatchMaker, Normalization, NormalizationOf};
use crate::record::Predictions;

/// The report and the predictions of `model` on the test split of `data` (plain argmax).
pub fn evaluate_model(
    model_path: &Path,
    data: &Dataset,
    norm: Option<Normalization>,
    device: &Device,
    threads: usize,
    batch: usize,
) -> Result<(ClassificationReport, Predictions), TrainError> {
    let norm = norm.unwrap_or_else(|| Normalization::of(&data.train, &data.subset, data.info.image_shape));
    let mut classifier = Classifier::open(model_path, data, device, threads, batch)?;
    let test: Vec<u32> = (0..data.test.len() as u32).collect();
    Ok(classify(&classifier.logits(&data.test, &test, norm)?, None))
}

/// An ONNX classifier ready to run on a dataset's images.
pub struct Classifier {
    path: PathBuf,
    session: Session,
    input: String,
    output: String,
    /// Images per run: the model's fixed batch, else the requested one.
    chunk: usize,
    shape: [usize; 3],
    num_classes: usize,
}

impl Classifier {
    /// Loads `model_path` and checks its input against `data`'s image shape.
    pub fn open(
        model_path: &Path,
        data: &Dataset,
        device: &Device,
        threads: usize,
        batch: usize,
    ) -> Result<Classifier, TrainError> {
        let model = lt_graph::onnx::load(model_path)?;
        let (input, dims) = first_input(&model).ok_or_else(|| {
            TrainError::Setup(format!("{}: the model has no tensor input to feed images to", model_path.display()))
        })?;
        let shape = data.info.image_shape;
        if dims.len() != 4 || dims[1..].iter().zip(shape).any(|(d, s)| d.is_some_and(|d| d as usize != s)) {
            return Err(TrainError::Setup(format!(
                "{}: input `{input}` has shape {dims:?}, the dataset's images are {shape:?} (NCHW)",
                model_path.display()
            )));
        }
        // A model exported with a fixed batch runs in chunks of that size (the last one padded).
        let chunk = dims[0].map_or(batch, |b| b as usize);
        let output = model.graph.as_ref().and_then(|g| g.output.first()).map(|o| o.name.clone()).unwrap_or_default();
        let session = device.session(&lt_graph::onnx::encode(&model), threads)?;
        Ok(Classifier {
            path: model_path.to_path_buf(),
            session,
            input,
            output,
            chunk,
            shape,
            num_classes: data.num_classes(),
        })
    }

    /// The logits of the images `idx` of `split`, normalised by `norm`.
    pub fn logits(&mut self, split: &Split, idx: &[u32], norm: Normalization) -> Result<SplitLogits, TrainError> {
        let (shape, c) = (self.shape, self.num_classes);
        let maker = BatchMaker {
            split: Arc::new(split.clone()),
            shape,
            norm,
            augment: Augment::None,
            params: Default::default(),
            seed: 0,
        };
        let image_len: usize = shape.iter().product();
        let mut out = SplitLogits { num_classes: c, ..Default::default() };
        for part in idx.chunks(self.chunk) {
            let mut b = maker.make(0, 0, part);
            b.images.resize(self.chunk.max(part.len()) * image_len, 0.0);
            let n = b.images.len() / image_len;
            let ort_err = |e: ort::Error| TrainError::Runtime(e.into());
            let t = Tensor::from_array(([n, shape[0], shape[1], shape[2]], b.images)).map_err(ort_err)?;
            let outputs = self.session.run(ort::inputs![self.input.as_str() => t]).map_err(ort_err)?;
            let (oshape, logits) = outputs[self.output.as_str()].try_extract_tensor::<f32>().map_err(ort_err)?;
            if oshape.len() != 2 || oshape[1] as usize != c {
                return Err(TrainError::Setup(format!(
                    "{}: output `{}` has shape {:?}, expected [N, {c}] for the dataset's {c} classes",
                    self.path.display(),
                    self.output,
                    oshape.to_vec()
                )));
            }
            out.logits.extend_from_slice(&logits[..part.len() * c]);
            out.index.extend_from_slice(part);
            out.label.extend(part.iter().map(|&i| split.labels[i as usize]));
        }
        Ok(out)
    }
}

/// A model's logits on some rows of a split.
#[derive(Debug, Clone, Default)]
pub struct SplitLogits {
    /// Row indices into the split.
    pub index: Vec<u32>,
    pub label: Vec<u16>,
    /// Row-major `[n, C]`.
    pub logits: Vec<f32>,
    pub num_classes: usize,
}

/// Predictions and their report: `argmax_c (z_c + shift_c)`, scores the softmax of the
/// shifted logits (the shift of [`logit_adjustment`], or none).
pub fn classify(logits: &SplitLogits, shift: Option<&[f32]>) -> (ClassificationReport, Predictions) {
    let c = logits.num_classes;
    let mut pred = Predictions { num_classes: c, ..Default::default() };
    let mut row = vec![0f32; c];
    for ((raw, &index), &label) in logits.logits.chunks_exact(c).zip(&logits.index).zip(&logits.label) {
        row.copy_from_slice(raw);
        if let Some(s) = shift {
            row.iter_mut().zip(s).for_each(|(z, s)| *z += s);
        }
        // Scores and argmax as the run computed its own predictions.
        pred.push_logits(index, label, &row);
    }
    (classification_report(&ConfusionMatrix::from_predictions(&pred.labels(), &pred.predictions(), c)), pred)
}

/// The post-hoc shift `−tau·log π_c`, π_c = n_c / Σ n from the training counts. A class
/// without training examples has log π = −∞ and would win every argmax: refused for tau ≠ 0.
pub fn logit_adjustment(train_counts: &[u64], tau: f64) -> Result<Vec<f32>, TrainError> {
    if !tau.is_finite() {
        return Err(TrainError::Setup(format!("logit adjustment τ = {tau}: give a finite number")));
    }
    if tau == 0.0 {
        return Ok(vec![0.0; train_counts.len()]);
    }
    if let Some(k) = train_counts.iter().position(|&n| n == 0) {
        return Err(TrainError::Setup(format!(
            "post-hoc logit adjustment needs the training prior of every class, but class {k} has no training example"
        )));
    }
    let total: f64 = train_counts.iter().map(|&n| n as f64).sum();
    Ok(train_counts.iter().map(|&n| (-tau * (n as f64 / total).ln()) as f32).collect())
}

/// The outcome of choosing τ on validation rows.
#[derive(Debug, Clone)]
pub struct LogitAdjustSweep {
    /// The chosen τ: the highest validation balanced accuracy, ties to the earlier listed τ.
    pub chosen: f64,
    /// Each candidate with its validation report, in the order given.
    pub validation: Vec<(f64, ClassificationReport)>,
}

/// Chooses τ among `taus` by balanced accuracy on `validation` (which must not be test data).
pub fn sweep_logit_adjustment(
    validation: &SplitLogits,
    train_counts: &[u64],
    taus: &[f64],
) -> Result<LogitAdjustSweep, TrainError> {
    if taus.is_empty() {
        return Err(TrainError::Setup("the logit-adjustment sweep needs at least one τ".into()));
    }
    if validation.index.is_empty() {
        return Err(TrainError::Setup("the logit-adjustment sweep has no validation rows to choose on".into()));
    }
    let mut rows = Vec::with_capacity(taus.len());
    let mut best: Option<(f64, f64)> = None;
    for &tau in taus {
        let (report, _) = classify(validation, Some(&logit_adjustment(train_counts, tau)?));
        let score = report.balanced_accuracy;
        if best.is_none_or(|(_, b)| score > b) {
            best = Some((tau, score));
        }
        rows.push((tau, report));
    }
    let chosen = best.map_or(taus[0], |(t, _)| t);
    Ok(LogitAdjustSweep { chosen, validation: rows })
}

/// The first graph input that is not an initializer, with its dims (None = symbolic).
fn first_input(model: &ModelProto) -> Option<(String, Vec<Option<i64>>)> {
    let g = model.graph.as_ref()?;
    let inits: std::collections::HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let input = g.input.iter().find(|i| !inits.contains(i.name.as_str()))?;
    let type_proto::Value::TensorType(t) = input.r#type.as_ref()?.value.as_ref()?;
    let dims = t
        .shape
        .as_ref()?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Value::DimValue(v)) if v > 0 => Some(v),
            _ => None,
        })
        .collect();
    Some((input.name.clone(), dims))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three classes, prior counts 80/15/5; rows whose true class is a rare one but whose raw
    /// logits favour class 0 by less than the log-prior gap.
    fn toy() -> (SplitLogits, Vec<u64>) {
        let rows: [([f32; 3], u16); 6] = [
            ([5.0, 0.0, 0.0], 0),
            ([6.0, 1.0, 0.0], 0),
            ([1.0, 0.5, -3.0], 1),
            ([1.2, 0.0, 0.4], 2),
            ([0.9, 0.0, 0.5], 2),
            ([0.0, 2.0, 0.0], 1),
        ];
        let logits = SplitLogits {
            index: (0..6).collect(),
            label: rows.iter().map(|r| r.1).collect(),
            logits: rows.iter().flat_map(|r| r.0).collect(),
            num_classes: 3,
        };
        (logits, vec![80, 15, 5])
    }

    #[test]
    fn the_shift_is_minus_tau_log_prior() {
        let shift = logit_adjustment(&[80, 15, 5], 1.5).unwrap();
        for (s, n) in shift.iter().zip([80.0f64, 15.0, 5.0]) {
            assert!((*s as f64 - (-1.5 * (n / 100.0).ln())).abs() < 1e-6, "{shift:?}");
        }
        assert_eq!(logit_adjustment(&[3, 0], 0.0).unwrap(), vec![0.0, 0.0]);
        let e = logit_adjustment(&[3, 0], 1.0).unwrap_err().to_string();
        assert!(e.contains("class 1 has no training example"), "{e}");
        assert!(logit_adjustment(&[3, 1], f64::NAN).is_err());
    }

    #[test]
    fn adjusted_predictions_move_to_the_rare_classes() {
        let (logits, counts) = toy();
        let (plain, p0) = classify(&logits, None);
        assert_eq!(p0.prediction, vec![0, 0, 0, 0, 0, 1]);
        // τ = 1: shift = −log π = (0.223, 1.897, 2.996): row 2 goes to class 1
        // (0.5 + 1.897 > 1 + 0.223), rows 3 and 4 to class 2; rows 0 and 1 stay.
        let (adjusted, p1) = classify(&logits, Some(&logit_adjustment(&counts, 1.0).unwrap()));
        assert_eq!(p1.prediction, vec![0, 0, 1, 2, 2, 1]);
        assert_eq!(adjusted.accuracy, 1.0);
        assert!(plain.balanced_accuracy < adjusted.balanced_accuracy);
        // The scores are the softmax of the shifted logits.
        let s = &p1.scores[6..9];
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6 && s[1] > s[0] && s[1] > s[2], "{s:?}");
    }

    #[test]
    fn the_sweep_chooses_by_validation_balanced_accuracy() {
        let (logits, counts) = toy();
        let sweep = sweep_logit_adjustment(&logits, &counts, &[0.0, 1.0, 1.5, 8.0]).unwrap();
        let accs: Vec<f64> = sweep.validation.iter().map(|(_, r)| r.balanced_accuracy).collect();
        assert_eq!(sweep.validation.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0.0, 1.0, 1.5, 8.0]);
        // τ = 1 and 1.5 are both perfect here; the earlier listed wins the tie.
        assert_eq!((accs[1], accs[2]), (1.0, 1.0), "{accs:?}");
        assert!(accs[0] < 1.0 && accs[3] < 1.0, "{accs:?}");
        assert_eq!(sweep.chosen, 1.0);
        let sweep = sweep_logit_adjustment(&logits, &counts, &[8.0, 1.5, 1.0]).unwrap();
        assert_eq!(sweep.chosen, 1.5);
        assert!(sweep_logit_adjustment(&SplitLogits::default(), &counts, &[1.0]).is_err());
        assert!(sweep_logit_adjustment(&logits, &counts, &[]).is_err());
    }
}
