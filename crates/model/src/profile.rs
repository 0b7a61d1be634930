//! Opt-in attribution of wall-clock time to the parts of a forward pass (`SGVLM_PROFILE=1`, or [`set_enabled`]).
//!
//! On a GPU candle queues its kernels and returns at once, so host timers say nothing about where the device time
//! goes. A [`span`] waits for the device when it opens and when it closes, so the time between is what the host and
//! the device spent on that part alone; the totals per part name accumulate until [`take`]. The waits add a little
//! time of their own and remove the overlap between the host's launching and the device's work, so a profiled run
//! is slower than a plain one: read the shares, not the sum. Off (the default), opening a span costs one atomic
//! load. No profiler crate attributes time inside candle's asynchronous CUDA stream, and Nsight Systems does not
//! run on the GPU machines this project is measured on (`scripts/gpu_bench.sh`), hence this module.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use candle_core::Device;

/// 0: not read from the environment yet; 1: off; 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);
static TOTALS: Mutex<BTreeMap<&'static str, Part>> = Mutex::new(BTreeMap::new());

/// The accumulated time of one part.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Part {
    pub seconds: f64,
    pub calls: u64,
}

/// Whether spans record (first call: `SGVLM_PROFILE` set to anything but `0` or empty).
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var("SGVLM_PROFILE").is_ok_and(|v| !v.is_empty() && v != "0");
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        s => s == 2,
    }
}

/// Turns recording on or off for the whole process (overrides the environment).
pub fn set_enabled(on: bool) {
    STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

/// A part being timed; closes (waits for the device, records) when dropped.
pub struct Span {
    name: &'static str,
    device: Device,
    start: Instant,
}

/// Opens a span named `name` on `device` when recording is on.
pub fn span(name: &'static str, device: &Device) -> Option<Span> {
    if !enabled() {
        return None;
    }
    // Work queued before the span is not its own. A failed wait leaves the figure less exact, nothing worse.
    device.synchronize().ok();
    Some(Span { name, device: device.clone(), start: Instant::now() })
}

impl Drop for Span {
    fn drop(&mut self) {
        self.device.synchronize().ok();
        let seconds = self.start.elapsed().as_secs_f64();
        let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
        let p = totals.entry(self.name).or_default();
        p.seconds += seconds;
        p.calls += 1;
    }
}

/// The totals recorded since the last call, by part name, and clears them.
pub fn take() -> BTreeMap<String, Part> {
    let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *totals).into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_record_only_while_enabled() {
        let dev = Device::Cpu;
        set_enabled(false);
        drop(span("off", &dev));
        set_enabled(true);
        take();
        for _ in 0..3 {
            let _s = span("part", &dev);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        set_enabled(false);
        let t = take();
        assert!(!t.contains_key("off"));
        let p = t["part"];
        assert_eq!(p.calls, 3);
        assert!(p.seconds >= 0.006, "{p:?}");
        assert!(!take().contains_key("part"), "take clears the totals");
    }
}
