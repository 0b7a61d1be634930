//! Several images in one vision-tower call: each image attends only within itself, so the features of a batch of
//! images (runs of equal size, batched together, and sizes mixed) equal those of each image alone.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use sgvlm_model::{checkpoint, Config, Qwen35};

#[test]
fn images_in_one_call_equal_each_image_alone() {
    let dev = Device::Cpu;
    let cfg = Config::tiny();
    let weights = weights_again(&cfg);
    let model = Qwen35::new(&cfg, VarBuilder::from_tensors(weights, DType::F32, &dev)).unwrap();
    let grids = [[1usize, 4, 4], [1, 4, 4], [1, 4, 6], [1, 4, 4], [2, 4, 4]];
    let row = 3 * cfg.vision_config.temporal_patch_size * cfg.vision_config.patch_size.pow(2);
    let patches: usize = grids.iter().map(|g| g[0] * g[1] * g[2]).sum();
    let values: Vec<f32> = (0..patches * row).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
    let pixels = Tensor::from_vec(values, (patches, row), &dev).unwrap();

    let together = model.vision.forward(&pixels, &grids).unwrap();
    // The same with the equal-size runs split into groups of at most two frames.
    let mut grouped = Qwen35::new(&cfg, VarBuilder::from_tensors(weights_again(&cfg), DType::F32, &dev)).unwrap();
    let heads = cfg.vision_config.num_heads;
    grouped.vision.max_attention_scores = 2 * heads * 16 * 16;
    let in_groups = grouped.vision.forward(&pixels, &grids).unwrap();
    let mut start = 0;
    let mut alone = Vec::new();
    for g in grids {
        let n = g[0] * g[1] * g[2];
        alone.push(model.vision.forward(&pixels.narrow(0, start, n).unwrap(), &[g]).unwrap());
        start += n;
    }
    let alone = Tensor::cat(&alone, 0).unwrap();
    assert_eq!(together.dims(), alone.dims());
    let scale = alone.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    for (what, t) in [("all together", &together), ("in groups of two", &in_groups)] {
        let diff = (t - &alone).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff <= 1e-5 * scale.max(1.0), "images {what} differ from single ones by {diff} (scale {scale})");
    }
}

fn weights_again(cfg: &Config) -> std::collections::HashMap<String, candle_core::Tensor> {
    checkpoint::random_weights(cfg, 3, &Device::Cpu).unwrap()
}
