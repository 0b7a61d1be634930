//! Benchmark (not a test): the chunked gated delta rule alone (chunk 16, the demo's training chunk), forward and
//! forward+backward, at one shard of the demo's step (B 8, T 355, 4 heads of 16), an older demo shape (B 16, T 256,
//! 8 heads of 16) and the 0.8B shape (B 1, T 1007, 16 heads of 128).
//!
//! ```sh
//! cargo run --release -p sgvlm-model --example bench_delta_rule
//! ```

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use sgvlm_model::text::delta_rule;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let dev = Device::Cpu;
    for (name, b, t, h, d) in [("demo-shard", 8, 355, 4, 16), ("demo", 16, 256, 8, 16), ("0.8b", 1, 1007, 16, 128)] {
        let q = Tensor::randn(0f32, 1.0, (b, t, h, d), &dev)?;
        let k = Tensor::randn(0f32, 1.0, (b, t, h, d), &dev)?;
        let v = Tensor::randn(0f32, 1.0, (b, t, h, d), &dev)?;
        let g = (Tensor::rand(0f32, 1.0, (b, t, h), &dev)? * -0.5)?;
        let beta = Tensor::rand(0f32, 1.0, (b, t, h), &dev)?;
        let t0 = Instant::now();
        let (o, _) = delta_rule::chunked(&q, &k, &v, &g, &beta, 16, None)?;
        o.sum_all()?.to_scalar::<f32>()?;
        let fwd = t0.elapsed().as_secs_f64();
        let qv = Var::from_tensor(&q)?;
        let t0 = Instant::now();
        let (o, _) = delta_rule::chunked(qv.as_tensor(), &k, &v, &g, &beta, 16, None)?;
        let grads = o.sqr()?.sum_all()?.backward()?;
        std::hint::black_box(grads);
        let fb = t0.elapsed().as_secs_f64();
        println!("{}", serde_json::json!({"shape": name, "forward_s": fwd, "forward_backward_s": fb}));
    }
    Ok(())
}
