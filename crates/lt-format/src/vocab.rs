//! The named choices every lt tool accepts, each defined once. A name is parsed the same way
//! from a flag, a TOML key and a JSON record, and an unknown one is an error that lists the
//! valid names (and says what kind of name it was).
//!
//! To add a word: a line in its `vocab!` block (name, doc, optional aliases). The doc is what
//! `--help` shows next to the name.

/// A closed set of names.
pub trait Vocab: Copy + Sized + 'static {
    /// What the names denote, for errors ("loss", "resampler").
    const WHAT: &'static str;
    /// Every value, in the order `--help` lists them.
    const ALL: &'static [Self];
    /// The canonical name, as written to files.
    fn name(self) -> &'static str;
    /// One line for `--help`.
    fn doc(self) -> &'static str;
    /// Other accepted spellings (read, never written).
    fn aliases(self) -> &'static [&'static str];

    /// The canonical names, in order.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.name()).collect()
    }

    /// Parses a name or an alias.
    fn parse_name(s: &str) -> Result<Self, VocabError> {
        Self::ALL.iter().copied().find(|v| v.name() == s || v.aliases().contains(&s)).ok_or_else(|| VocabError {
            what: Self::WHAT,
            value: s.to_string(),
            valid: Self::names().join(", "),
        })
    }
}

/// An unknown name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`; use one of {valid}")]
pub struct VocabError {
    pub what: &'static str,
    pub value: String,
    pub valid: String,
}

/// Declares a vocabulary enum with `Vocab`, `FromStr`, `Display` and string serde.
macro_rules! vocab {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $var:ident = $name:literal $(| $alias:literal)* : $doc:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $ty {
            $( #[doc = $doc] $(#[$vmeta])* $var, )+
        }

        impl $crate::vocab::Vocab for $ty {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$($ty::$var),+];
            fn name(self) -> &'static str {
                match self { $($ty::$var => $name,)+ }
            }
            fn doc(self) -> &'static str {
                match self { $($ty::$var => $doc,)+ }
            }
            fn aliases(self) -> &'static [&'static str] {
                match self { $($ty::$var => &[$($alias),*],)+ }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::vocab::VocabError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty as $crate::vocab::Vocab>::parse_name(s)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::vocab::Vocab::name(*self))
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::vocab::Vocab::name(*self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

vocab! {
    /// Where the training and evaluation sessions run.
    pub enum Ep ("execution provider") {
        Cpu = "cpu": "onnxruntime's CPU provider.",
        Cuda = "cuda": "onnxruntime's CUDA provider; an error without a usable GPU.",
        Auto = "auto": "CUDA when the CUDA provider loads and a GPU is usable, else CPU (and says which).",
    }
}

vocab! {
    /// The loss minimised by the training step.
    pub enum LossKind ("loss") {
        Ce = "ce": "(Weighted) softmax cross-entropy, PyTorch semantics.",
        Focal = "focal": "Focal loss; with --weights it is class-balanced focal (CB-focal).",
        Ldam = "ldam": "Label-distribution-aware margin loss (Cao et al. 2019); with --drw it is LDAM-DRW.",
        BalancedSoftmax = "balanced-softmax" | "logit-adjusted":
            "Balanced softmax (Ren et al. 2020) = the logit-adjusted loss (Menon et al. 2021): cross-entropy on logits + tau·log(prior).",
        Vs = "vs":
            "VS loss (Kini et al. 2021): cross-entropy on z_c·(n_c/n_max)^γ + tau·log(prior), γ = --vs-gamma; rarer classes' logits are shrunk in training.",
    }
}

vocab! {
    /// The classifier of a built-in network (--arch).
    pub enum HeadKind ("head") {
        Linear = "linear": "Linear layer x·Wᵀ + b.",
        Cosine = "cosine": "LDAM's NormedLinear: s·cos(x, w_c), features and class weights L2-normalised, no bias.",
    }
}

vocab! {
    /// Per-class weights in the loss.
    pub enum WeightsKind ("weight scheme") {
        None = "none": "Every class weighs 1.",
        Inverse = "inverse": "1 / n_c.",
        InverseSqrt = "inverse-sqrt": "1 / sqrt(n_c).",
        EffectiveNumber = "effective-number": "(1 - β) / (1 - β^n_c), the class-balanced loss (Cui et al. 2019).",
    }
}

vocab! {
    /// How class weights are scaled.
    pub enum WeightsNormalize ("weight normalisation") {
        Classes = "classes": "Rescale to sum to the number of classes (Cui et al.).",
        None = "none": "Raw values (the seed project's choice).",
    }
}

vocab! {
    /// Training-time augmentation.
    pub enum Augment ("augmentation") {
        CropFlip = "crop-flip": "Random crop with 4-pixel zero padding, then a horizontal flip with probability 1/2.",
        None = "none": "Images as they are.",
        AutoAugment = "autoaugment": "Crop+flip, then AutoAugment's CIFAR-10 policy (Cubuk et al. 2019; torchvision's ops).",
        RandAugment = "randaugment": "Crop+flip, then RandAugment: N random ops at magnitude M of 30 (Cubuk et al. 2020).",
    }
}

vocab! {
    /// The per-provider form of the training graph's convolution gradients, BatchNorm and
    /// ReLU mask (`lt-train graph --conv-grad`).
    pub enum LoweringName ("lowering") {
        Cpu = "cpu": "Forms that onnxruntime's CPU kernels run fastest.",
        Cuda = "cuda": "Forms that cuDNN runs fastest (ConvTranspose, batch-transposed Conv).",
    }
}

vocab! {
    /// How lt-pipeline's report groups classes by training images.
    pub enum ShotMode ("shot split") {
        Auto = "auto": "Both: many/medium/few (100/20) and head/mid/tail thirds.",
        Thresholds = "thresholds": "many > 100, few < 20 training images, medium between (Liu et al. 2019).",
        Thirds = "thirds": "Classes sorted by count, split into three equal groups.",
    }
}

vocab! {
    /// The long-tail profile of `lt-data build`.
    pub enum Profile ("profile") {
        Exp = "exp": "n_c = n_max · IF^(-c/(C-1)) (Cui et al. 2019).",
        Step = "step": "Half the classes keep n_max, the rest n_max / IF (Buda et al. 2018).",
        Counts = "counts": "Explicit per-class counts.",
        Indices = "indices": "Explicit source indices into the train split, from a file.",
        Balanced = "balanced": "Every class keeps all its images.",
    }
}

vocab! {
    /// The order in which training images are visited (a dataset's `manifest-NAME.parquet`).
    pub enum Resampler ("resampler") {
        Instance = "instance": "Every subset image once per epoch, shuffled.",
        RandomOver = "random-over": "Every class topped up to the largest with replacement (RandomOverSampler).",
        RandomUnder = "random-under": "Every class cut to the smallest without replacement (RandomUnderSampler).",
        ClassBalanced = "class-balanced": "Each draw picks a class uniformly, then one of its images.",
        Sqrt = "sqrt": "Class probability proportional to sqrt(n_c).",
        Progressive = "progressive": "Epoch t of E: (t/E) class-balanced + (1 - t/E) instance-balanced (Kang et al. 2020).",
        EffectiveNumber = "effective-number": "Per-image weight (1 - β) / (1 - β^n_c) (Cui et al. 2019).",
    }
}

vocab! {
    /// The second stage of two-stage training (Kang et al. 2020), after the run's epochs.
    pub enum Stage2 ("stage-2 method") {
        Crt = "crt": "Classifier re-training: the head re-initialised and retrained on the frozen backbone (eval mode) with --stage2-resample.",
        TauNorm = "tau-norm": "Post hoc, no training: each class's head weight w_c divided by ‖w_c‖^τ (τ = --tau-norm), the bias dropped.",
        Lws = "lws": "Learnable weight scaling: a per-class logit scale learned on the frozen model (backbone and head), cRT's loop.",
    }
}
