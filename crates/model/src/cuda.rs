//! Opening the GPU, and capturing a decode step as a CUDA graph to replay it with one launch.
//!
//! A decode step of the 0.8B model is some six hundred small kernels; launched one by one from the host each costs
//! more than its arithmetic (BENCHMARKS.md: 12.5 ms per batch-1 step on an H200 whose weight reads take ~0.4 ms).
//! A CUDA graph records the step's kernels once and replays them from the device. Three things make a candle step
//! replayable, and the caller provides the first two (the engine's fixed-shape step, `TextModel::decode_static`):
//! every shape is fixed (the KV cache is attended over its whole capacity under a mask), everything that changes
//! between steps lives in device buffers written before each launch (token ids, positions, the KV slot), and no
//! host data is uploaded inside the step — candle uploads a small dims/strides vector for each op on a strided
//! layout, so the warm-up run before a capture and the capture itself run under candle's host-to-device cache
//! (`enable_cuda_graph_htod_cache`, candle ≥ 0.11), which serves those uploads from device copies the warm-up
//! made. That cache is per thread: warm up, capture and launch on one thread.
//!
//! The device is opened on a stream of its own (capture is impossible on the legacy default stream) with cudarc's
//! per-tensor event tracking off: sgvlm uses one stream, and a captured step must not wait on events recorded
//! outside it. Without the `cuda` feature these functions return errors.

use candle_core::Device;

use crate::error::{Error, Result};

/// Opens CUDA device `ordinal` the way the engine and trainers want it (see the module doc).
pub fn open(ordinal: usize) -> Result<Device> {
    #[cfg(feature = "cuda")]
    {
        let device = Device::new_cuda_with_stream(ordinal)?;
        if let Device::Cuda(d) = &device {
            // SAFETY: every tensor of this device lives on its one stream, so no cross-stream ordering is lost.
            #[allow(unsafe_code)]
            unsafe {
                d.disable_event_tracking()
            };
        }
        Ok(device)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = ordinal;
        Err(Error::Input("this build has no CUDA support (build with `--features cuda`)".into()))
    }
}

/// Runs `f` with candle's host-to-device cache on (a no-op off CUDA): the warm-up before [`capture`].
pub fn with_upload_cache<R>(device: &Device, f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        let _cache = d.enable_cuda_graph_htod_cache();
        return f();
    }
    let _ = device;
    f()
}

/// A captured step, replayed by [`StepGraph::launch`].
pub struct StepGraph {
    #[cfg(feature = "cuda")]
    graph: candle_core::cuda_backend::cudarc::driver::CudaGraph,
}

impl std::fmt::Debug for StepGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepGraph")
    }
}

/// Records the kernels `f` issues on `device`'s stream as a graph, without running them (launch it to run them).
/// `f` must not read from or copy to the host and must not free any buffer made before the capture; the tensors
/// it makes and drops are the graph's own memory. When `f` or the capture fails, the capture is ended and the
/// error returned, and the device stays usable.
pub fn capture(device: &Device, f: impl FnOnce() -> Result<()>) -> Result<StepGraph> {
    #[cfg(feature = "cuda")]
    {
        use candle_core::cuda_backend::cudarc::driver::sys;
        let Device::Cuda(d) = device else {
            return Err(Error::Input("CUDA graphs need a CUDA device".into()));
        };
        let stream = d.cuda_stream();
        let _cache = d.enable_cuda_graph_htod_cache();
        let w = |e: candle_core::cuda_backend::cudarc::driver::DriverError| Error::Input(format!("CUDA graph: {e}"));
        stream.begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED).map_err(w)?;
        let ran = f();
        // Free what a launch left allocated before the next launch (the step's tensors are freed inside it).
        let flags = sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH;
        let ended = stream.end_capture(flags);
        ran?;
        match ended.map_err(w)? {
            Some(graph) => Ok(StepGraph { graph }),
            None => Err(Error::Input("CUDA graph: the capture recorded nothing".into())),
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (device, f);
        Err(Error::Input("CUDA graphs need a build with the `cuda` feature".into()))
    }
}

impl StepGraph {
    /// Runs the captured kernels once, asynchronously on the device's stream.
    pub fn launch(&self) -> Result<()> {
        #[cfg(feature = "cuda")]
        {
            self.graph.launch().map_err(|e| Error::Input(format!("CUDA graph launch: {e}")))
        }
        #[cfg(not(feature = "cuda"))]
        {
            Err(Error::Input("CUDA graphs need a build with the `cuda` feature".into()))
        }
    }
}
