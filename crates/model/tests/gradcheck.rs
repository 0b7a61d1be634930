//! Finite-difference check of our autograd path: in f64, the central difference of a masked cross-entropy loss
//! with respect to single weights of every module type must agree with the gradient candle's backward computes.
//! Uses a short image+text input and a delta-rule chunk of 4 so the chunked form spans several chunks. Every random
//! value is seeded (candle's CPU `randn` is not), and the difference is the fourth-order five-point stencil: with
//! weights scaled ×10 the loss is curved enough that the plain central difference's O(ε²) error reached the
//! tolerance on some draws.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand_distr::Distribution;
use sgvlm_model::{checkpoint, Config, ImageInput, ModelInput, Qwen35};

/// Seeded normal noise of `dims` (mean 0, standard deviation `std`).
fn noise(rng: &mut rand::rngs::StdRng, std: f64, dims: &[usize]) -> Tensor {
    let normal = rand_distr::Normal::new(0.0, std).unwrap();
    let n: usize = dims.iter().product();
    Tensor::from_vec((0..n).map(|_| normal.sample(rng)).collect::<Vec<f64>>(), dims, &Device::Cpu).unwrap()
}

fn loss(model: &Qwen35, ids: &Tensor, pixels: &Tensor, grids: &[[usize; 3]]) -> Tensor {
    let images = Some(ImageInput { pixel_values: pixels, grids });
    let logits =
        model.forward(&ModelInput { input_ids: Some(ids), images, ..Default::default() }, None).unwrap().logits;
    let (_, t, v) = logits.dims3().unwrap();
    let lp = candle_nn::ops::log_softmax(&logits.narrow(1, 0, t - 1).unwrap(), D::Minus1).unwrap();
    let targets = ids.narrow(1, 1, t - 1).unwrap().reshape((t - 1, 1)).unwrap();
    lp.reshape((t - 1, v)).unwrap().gather(&targets, 1).unwrap().mean_all().unwrap().neg().unwrap()
}

#[test]
fn autograd_matches_finite_differences() {
    let dev = Device::Cpu;
    let cfg = Config::tiny();
    let weights = checkpoint::random_weights(&cfg, 11, &dev).unwrap();
    let varmap = VarMap::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    {
        let mut data = varmap.data().lock().unwrap();
        // In name order, so the seeded draws land on the same weights every run.
        let mut weights: Vec<_> = weights.into_iter().collect();
        weights.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, t) in weights {
            let t = t.to_dtype(DType::F64).unwrap();
            // Non-trivial norms and biases, larger matrices, so every path carries signal.
            let t = if t.rank() == 1 { (&t + noise(&mut rng, 0.3, t.dims())).unwrap() } else { (t * 10.0).unwrap() };
            data.insert(name, Var::from_tensor(&t).unwrap());
        }
    }
    let mut model = Qwen35::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F64, &dev)).unwrap();
    model.text.chunk = 4;
    let im = cfg.image_token_id;
    let ids = Tensor::new(&[[5u32, 9, 2057, im, im, im, im, 2058, 40, 41, 42, 7, 8]], &dev).unwrap();
    let grids = [[1usize, 4, 4]];
    let pixels = noise(&mut rng, 1.0, &[16, 1536]);

    let base = loss(&model, &ids, &pixels, &grids);
    let grads = base.backward().unwrap();
    let names = [
        "model.language_model.embed_tokens.weight",
        "model.language_model.norm.weight",
        "model.language_model.layers.0.input_layernorm.weight",
        "model.language_model.layers.0.linear_attn.in_proj_qkv.weight",
        "model.language_model.layers.0.linear_attn.in_proj_a.weight",
        "model.language_model.layers.0.linear_attn.in_proj_b.weight",
        "model.language_model.layers.0.linear_attn.conv1d.weight",
        "model.language_model.layers.0.linear_attn.A_log",
        "model.language_model.layers.0.linear_attn.dt_bias",
        "model.language_model.layers.2.linear_attn.norm.weight",
        "model.language_model.layers.2.linear_attn.in_proj_z.weight",
        "model.language_model.layers.1.self_attn.q_proj.weight",
        "model.language_model.layers.1.self_attn.k_proj.weight",
        "model.language_model.layers.1.self_attn.q_norm.weight",
        "model.language_model.layers.3.self_attn.k_norm.weight",
        "model.language_model.layers.3.mlp.down_proj.weight",
        "model.visual.patch_embed.proj.weight",
        "model.visual.pos_embed.weight",
        "model.visual.blocks.0.attn.qkv.weight",
        "model.visual.blocks.1.norm2.bias",
        "model.visual.merger.linear_fc1.weight",
    ];
    let eps = 1e-5;
    let data = varmap.data().lock().unwrap();
    for name in names {
        let var = &data[name];
        let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient reached {name}"));
        let g: Vec<f64> = grad.flatten_all().unwrap().to_vec1().unwrap();
        // The entry with the largest analytic gradient, and the first entry.
        let biggest = (0..g.len()).max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs())).unwrap();
        for idx in [biggest, 0] {
            let orig: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let eval = |delta: f64| {
                let mut v = orig.clone();
                v[idx] += delta;
                var.set(&Tensor::from_vec(v, var.as_tensor().dims(), &dev).unwrap()).unwrap();
                loss(&model, &ids, &pixels, &grids).to_scalar::<f64>().unwrap()
            };
            let numeric = (8.0 * (eval(eps) - eval(-eps)) - (eval(2.0 * eps) - eval(-2.0 * eps))) / (12.0 * eps);
            var.set(&Tensor::from_vec(orig, var.as_tensor().dims(), &dev).unwrap()).unwrap();
            let analytic = g[idx];
            let err = (numeric - analytic).abs();
            assert!(
                err <= 1e-6 + 1e-4 * analytic.abs().max(numeric.abs()),
                "{name}[{idx}]: autograd {analytic:e} vs finite difference {numeric:e}"
            );
        }
        assert!(g[biggest].abs() > 1e-8, "{name}: gradient is zero everywhere");
    }
}

#[test]
fn every_weight_receives_a_gradient() {
    // Loaded as variables from the parity checkpoint; one image+text loss must reach all 85 tensors.
    let dev = Device::Cpu;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
    let cfg = Config::from_json_file(&dir.join("config.json")).unwrap();
    let varmap = checkpoint::load_varmap(&dir, &cfg, &dev).unwrap();
    let model = Qwen35::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &dev)).unwrap();
    let im = cfg.image_token_id;
    let ids = Tensor::new(&[[5u32, 9, 2057, im, im, im, im, 2058, 40, 41, 42, 7, 8]], &dev).unwrap();
    let pixels = Tensor::randn(0f32, 1.0, (16, 1536), &dev).unwrap();
    let l = loss(&model, &ids, &pixels, &[[1, 4, 4]]);
    let grads = l.backward().unwrap();
    let data = varmap.data().lock().unwrap();
    assert_eq!(data.len(), 85);
    for (name, var) in data.iter() {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient reached {name}"));
        let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(norm > 0.0, "{name}: zero gradient");
    }
}
