//! Learning-rate schedules, evaluated per step so warm-up is smooth. The setting itself
//! (`--schedule`) is lt-format's [`Schedule`].

pub use lt_format::schedule::Schedule;

/// The rate for step `step` (0-based) of epoch `epoch` (1-based) with `steps_per_epoch`
/// steps, `epochs` epochs in all and `warmup` warm-up epochs (linear from base/steps to base).
pub fn learning_rate(
    base: f32,
    schedule: &Schedule,
    warmup: usize,
    epoch: usize,
    step: usize,
    steps_per_epoch: usize,
    epochs: usize,
) -> f32 {
    let global = (epoch - 1) * steps_per_epoch + step;
    let warm_steps = warmup * steps_per_epoch;
    if global < warm_steps {
        return base * (global + 1) as f32 / warm_steps as f32;
    }
    match schedule {
        Schedule::Constant => base,
        Schedule::Step { at, factor } => {
            base * (*factor as f32).powi(at.iter().filter(|&&e| epoch >= e).count() as i32)
        }
        Schedule::Cosine => {
            let total = (epochs * steps_per_epoch).saturating_sub(warm_steps).max(1);
            let t = (global - warm_steps) as f32 / total as f32;
            base * 0.5 * (1.0 + (std::f32::consts::PI * t).cos())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in ["constant", "cosine", "step:160,180", "step:160,180*0.01"] {
            assert_eq!(s.parse::<Schedule>().unwrap().to_string(), s);
        }
        assert!("step:5,3".parse::<Schedule>().is_err());
        assert!("step:3*0".parse::<Schedule>().is_err());
        assert_eq!("step:2,4*0.01".parse::<Schedule>().unwrap(), Schedule::Step { at: vec![2, 4], factor: 0.01 });
        // LDAM-DRW's CIFAR schedule: 0.1, then 0.001 from epoch 161, 0.00001 from 181.
        let ldam: Schedule = "step:161,181*0.01".parse().unwrap();
        assert!((learning_rate(0.1, &ldam, 0, 170, 0, 10, 200) - 0.001).abs() < 1e-9);
        assert!((learning_rate(0.1, &ldam, 0, 190, 0, 10, 200) - 0.00001).abs() < 1e-10);
        assert!("linear".parse::<Schedule>().unwrap_err().contains("constant, cosine"));
    }

    #[test]
    fn step_warmup_and_cosine_values() {
        let s = Schedule::Step { at: vec![3, 5], factor: 0.1 };
        // 2 warm-up epochs of 4 steps: 0.1·(k+1)/8
        assert!((learning_rate(0.1, &s, 2, 1, 0, 4, 6) - 0.0125).abs() < 1e-7);
        assert!((learning_rate(0.1, &s, 2, 2, 3, 4, 6) - 0.1).abs() < 1e-7);
        assert!((learning_rate(0.1, &s, 2, 3, 0, 4, 6) - 0.01).abs() < 1e-7);
        assert!((learning_rate(0.1, &s, 2, 6, 0, 4, 6) - 0.001).abs() < 1e-8);
        let c = Schedule::Cosine;
        assert!((learning_rate(1.0, &c, 0, 1, 0, 10, 2) - 1.0).abs() < 1e-6);
        assert!((learning_rate(1.0, &c, 0, 2, 0, 10, 2) - 0.5).abs() < 1e-6);
    }
}
