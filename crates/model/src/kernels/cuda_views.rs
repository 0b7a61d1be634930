//! What every launch of our CUDA kernels needs (`cuda` feature): f32 device views of tensors and storages, the
//! device of a tensor, and fresh device buffers wrapped as tensors. Borrowing candle's device memory for a launch
//! needs no `unsafe`; the launches themselves live in `delta_decode_cuda`, `delta_rule_cuda` and `train_cuda`.

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView};
use candle_core::cuda_backend::{CudaDType, CudaStorage};
use candle_core::op::BackpropOp;
use candle_core::{CudaDevice, Device, Layout, Storage, Tensor};

use crate::error::{Error, Result};

/// The CUDA device `t` lives on.
pub(super) fn cuda_device<'a>(t: &'a Tensor, what: &str) -> Result<&'a CudaDevice> {
    match t.device() {
        Device::Cuda(dev) => Ok(dev),
        _ => Err(Error::Input(format!("{what} (CUDA): the inputs are not on a CUDA device"))),
    }
}

/// The f32 view of a contiguous storage.
pub(super) fn storage_view<'a>(
    s: &'a CudaStorage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<CudaView<'a, f32>> {
    let Some((a, b)) = layout.contiguous_offsets() else {
        candle_core::bail!("{what} (CUDA): the input must be contiguous");
    };
    Ok(s.as_cuda_slice::<f32>()?.slice(a..b))
}

/// Runs `f` with a device view of each tensor of `ts` (contiguous f32 CUDA tensors), borrowed in place.
pub(super) fn with_views<R>(
    ts: &[&Tensor],
    what: &str,
    f: impl FnOnce(&[CudaView<'_, f32>]) -> Result<R>,
) -> Result<R> {
    with_typed_views::<f32, R>(ts, what, f)
}

/// A device buffer as a tensor of `dims` without a graph node.
pub(super) fn wrap(s: CudaSlice<f32>, dims: &[usize], dev: &CudaDevice) -> Tensor {
    let storage = Storage::Cuda(CudaStorage::wrap_cuda_slice(s, dev.clone()));
    Tensor::from_storage(storage, dims, BackpropOp::none(), false)
}

/// Runs `f` with a device view of each tensor of `ts` (contiguous CUDA tensors of element type `T`), borrowed in
/// place.
pub(super) fn with_typed_views<T: CudaDType, R>(
    ts: &[&Tensor],
    what: &str,
    f: impl FnOnce(&[CudaView<'_, T>]) -> Result<R>,
) -> Result<R> {
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let mut views = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let Storage::Cuda(cs) = &**storage else {
            return Err(Error::Input(format!("{what} (CUDA): an input is not on the GPU")));
        };
        let Some((a, b)) = layout.contiguous_offsets() else {
            return Err(Error::Input(format!("{what} (CUDA): an input is not contiguous")));
        };
        views.push(cs.as_cuda_slice::<T>()?.slice(a..b));
    }
    f(&views)
}

/// A device buffer of element type `T` as a tensor of `dims` without a graph node.
pub(super) fn wrap_typed<T: CudaDType>(s: CudaSlice<T>, dims: &[usize], dev: &CudaDevice) -> Tensor {
    let storage = Storage::Cuda(CudaStorage::wrap_cuda_slice(s, dev.clone()));
    Tensor::from_storage(storage, dims, BackpropOp::none(), false)
}
