//! A manifest the dataset directory lacks, computed in memory with lt-data's own function
//! (`lt_data::resample::manifest`, from its pure part), so `lt-train --resample S` needs no
//! rebuild: the manifest is a cheap, deterministic function of the subset, the dataset's seed
//! and the number of epochs, and equals the file `lt-data build --resample S --epochs E` writes.

use lt_data::resample::{Manifest, Strategy, manifest};

use super::{Dataset, DatasetError, check_strategy_name};

impl Dataset {
    /// Computes the manifest of `strategy` for `epochs` epochs when the directory has none
    /// (β of effective-number: `beta`, lt-train's `--beta`), keeps it for
    /// [`Dataset::manifest`] and says so on stderr. Returns whether it computed one; a
    /// manifest the directory has, or describes, is left to [`Dataset::manifest`] to read.
    pub fn compute_missing_manifest(&mut self, strategy: &str, epochs: usize, beta: f64) -> Result<bool, DatasetError> {
        check_strategy_name(strategy)?;
        let file = format!("manifest-{strategy}.parquet");
        if self.info.manifests.contains_key(strategy) || self.dir.join(&file).exists() {
            return Ok(false);
        }
        let epochs_of_run = epochs;
        let epochs = self.computed_manifest(strategy, epochs, beta)?;
        let seed = self.info.seed.expect("computed_manifest needs the seed");
        let beta_note = if strategy == "effective-number" { format!(", β {beta} (--beta)") } else { String::new() };
        eprintln!(
            "lt-train: {} has no manifest `{strategy}`; computing it in memory with lt-data's rule (dataset seed \
             {seed}, {epochs_of_run} epochs{beta_note}), the manifest `lt-data build --resample {strategy} --epochs \
             {epochs_of_run} --seed {seed}` writes",
            self.dir.display()
        );
        self.computed_manifests.insert(strategy.to_string(), epochs);
        Ok(true)
    }

    /// The manifest of `strategy` over this dataset's subset for `epochs` epochs, computed as
    /// `lt-data build` computes it (its seed from dataset.json): `result[e]` is epoch e's
    /// train-split indices in visiting order.
    pub fn computed_manifest(&self, strategy: &str, epochs: usize, beta: f64) -> Result<Vec<Vec<u32>>, DatasetError> {
        check_strategy_name(strategy)?;
        let not_computable = |reason: String| DatasetError::ManifestNotComputable {
            dir: self.dir.clone(),
            strategy: strategy.to_string(),
            reason,
        };
        let Some(seed) = self.info.seed else {
            return Err(not_computable("dataset.json records no `seed` of the subset".into()));
        };
        let epochs = u32::try_from(epochs).map_err(|_| not_computable(format!("{epochs} epochs is too many")))?;
        let rule = Strategy::parse(strategy, Some(beta)).map_err(|e| not_computable(e.to_string()))?;
        let labels: Vec<u16> = self.subset.iter().map(|&i| self.train.labels[i as usize]).collect();
        let m = manifest(&rule, &self.subset, &labels, self.num_classes(), epochs, seed)
            .map_err(|e| not_computable(e.to_string()))?;
        Ok(by_epoch(m, epochs))
    }
}

/// A manifest's rows (epoch, then position, ascending as lt-data builds them) split per epoch.
fn by_epoch(m: Manifest, epochs: u32) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); epochs as usize];
    for (&e, &i) in m.epoch.iter().zip(&m.index) {
        out[e as usize].push(i);
    }
    out
}
