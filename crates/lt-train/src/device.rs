//! Execution providers: where sessions run and where state tensors live.

use ort::ep;
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::config::{Ep, TrainConfig};
use crate::error::TrainError;
use crate::progress::Progress;
use crate::runtime::{Runtime, RuntimeError};

/// The execution provider a run uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Device {
    Cpu,
    Cuda {
        device_id: i32,
        tf32: bool,
        exhaustive_search: bool,
        /// Capture the training step as CUDA graphs (static shapes; see `engine`).
        cuda_graph: bool,
    },
}

impl Device {
    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }

    /// The name recorded in run.json.
    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "cpu".into(),
            Device::Cuda { device_id, .. } => format!("cuda:{device_id}"),
        }
    }

    /// Whether training sessions should capture CUDA graphs.
    pub fn cuda_graph(&self) -> bool {
        matches!(self, Device::Cuda { cuda_graph: true, .. })
    }

    /// A session on this device. CUDA registration failures are errors, never a silent CPU run.
    pub fn session(&self, model: &[u8], threads: usize) -> Result<Session, RuntimeError> {
        self.session_with(model, threads, None, false)
    }

    /// A session that writes onnxruntime's per-node profile to `PROFILE_<date>.json` when
    /// `profile` is given (read it back with [`Session::end_profiling`]), and on CUDA enables
    /// graph capture when `cuda_graph` (the caller must then run it through fixed IoBindings).
    pub fn session_with(
        &self,
        model: &[u8],
        threads: usize,
        profile: Option<&std::path::Path>,
        cuda_graph: bool,
    ) -> Result<Session, RuntimeError> {
        let runtime = Runtime::get(!self.is_cpu())?;
        let mut builder = Session::builder(runtime.environment())?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(ort::Error::from)?
            .with_intra_threads(threads)
            .map_err(ort::Error::from)?;
        if let Some(prefix) = profile {
            builder = builder.with_profiling(prefix).map_err(ort::Error::from)?;
        }
        if let Device::Cuda { device_id, tf32, exhaustive_search, .. } = self {
            if !runtime.has_cuda_provider()? {
                return Err(RuntimeError::Device {
                    message: format!(
                        "--ep cuda: the onnxruntime at {} has no CUDA provider; install onnxruntime-gpu with `bash scripts/install-ort.sh --gpu`",
                        runtime.library.display()
                    ),
                });
            }
            let search = if *exhaustive_search {
                ep::cuda::ConvAlgorithmSearch::Exhaustive
            } else {
                ep::cuda::ConvAlgorithmSearch::Heuristic
            };
            let cuda = ep::CUDA::default()
                .with_device_id(*device_id)
                .with_tf32(*tf32)
                .with_conv_algorithm_search(search)
                .with_cuda_graph(cuda_graph)
                .build()
                .error_on_failure();
            builder = builder.with_execution_providers([cuda]).map_err(|e| RuntimeError::Device {
                message: format!("--ep cuda: could not start the CUDA provider on device {device_id}: {e}"),
            })?;
        }
        Ok(builder.commit_from_memory(model)?)
    }

    /// The allocator state tensors are created with: device memory of the session's provider.
    pub fn state_allocator(&self, session: &Session) -> Result<Allocator, RuntimeError> {
        match self {
            Device::Cpu => Ok(Allocator::default()),
            Device::Cuda { .. } => Ok(Allocator::new(session, self.memory_info()?)?),
        }
    }
}

impl Device {
    /// Memory info of the device's default allocator (where state lives).
    pub fn memory_info(&self) -> Result<MemoryInfo<'static>, RuntimeError> {
        Ok(match self {
            Device::Cpu => MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::Default)?,
            Device::Cuda { device_id, .. } => {
                MemoryInfo::new(AllocationDevice::CUDA, *device_id, AllocatorType::Device, MemoryType::Default)?
            }
        })
    }
}

/// Intra-op threads for CPU sessions: the machine's cores, so onnxruntime and the rayon
/// loader do not oversubscribe a small machine (the loader prefetches between runs).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The execution provider `cfg` asks for; `auto` probes CUDA and says what it picked.
pub fn resolve_device(cfg: &TrainConfig, progress: &dyn Progress) -> Result<Device, TrainError> {
    let cuda = Device::Cuda {
        device_id: cfg.device,
        tf32: cfg.tf32,
        exhaustive_search: !cfg.cudnn_heuristic,
        cuda_graph: !cfg.no_cuda_graph,
    };
    match cfg.ep {
        Ep::Cpu => Ok(Device::Cpu),
        Ep::Cuda => {
            crate::cuda_libs::preload(progress)?;
            probe(&cuda)?;
            Ok(cuda)
        }
        Ep::Auto => {
            let found = crate::cuda_libs::preload(progress).is_ok() && probe(&cuda).is_ok();
            let device = if found { cuda } else { Device::Cpu };
            progress.message(&format!("--ep auto: using {}", device.name()));
            Ok(device)
        }
    }
}

/// Creates a one-node session on the device: fails fast (and clearly) when no GPU is usable.
fn probe(device: &Device) -> Result<(), TrainError> {
    use lt_graph::onnx::{GraphBuilder, proto::DataType};
    let mut g = GraphBuilder::new("probe");
    let x = g.input("x", DataType::Float, &[1])?;
    let y = g.op("Relu", &[&x], &[])?;
    g.output(&y, "y", DataType::Float, Some(&[1]))?;
    device.session(&lt_graph::onnx::encode(&g.finish()), 1)?;
    Ok(())
}
