#!/usr/bin/env python3
"""Dev-only: record Hugging Face transformers outputs of a tiny random Qwen3.5 for sgvlm-model's parity tests.

Needs torch (CPU) and transformers >= 5 with Qwen3.5 (checked with transformers 5.24.0, torch 2.15.0):

    python3 -m venv /tmp/qvenv && /tmp/qvenv/bin/pip install torch 'transformers>=5' safetensors pillow
    # (PyPI's Linux torch is a CUDA build: it imports only with its nvidia/cuda-toolkit wheels, ~3 GB, even on CPU)
    /tmp/qvenv/bin/python tools/make_qwen35_fixtures.py crates/model/tests/fixtures/tiny
    /tmp/qvenv/bin/python tools/make_qwen35_fixtures.py --check-load DIR   # a `sgvlm model init` output
    sgvlm model init --preset tiny-realvocab --seed 0 --dtype f32 --out /tmp/rv
    /tmp/qvenv/bin/python tools/make_qwen35_fixtures.py --record /tmp/rv crates/model/tests/fixtures/tiny_realvocab.safetensors
    /tmp/qvenv/bin/python tools/make_qwen35_fixtures.py --processor crates/model/tests/fixtures/processor.safetensors
    # untied LM head: tiny_untied.json = the tiny config.json with both `tie_word_embeddings` set to false
    sgvlm model init --preset tiny_untied.json --seed 0 --dtype f32 --out /tmp/ut
    /tmp/qvenv/bin/python tools/make_qwen35_fixtures.py --record /tmp/ut crates/model/tests/fixtures/tiny_untied.safetensors

Writes into OUT: the checkpoint (config.json, model.safetensors in f32: the `tiny` preset of qwen35_notes.md with
every 1-D parameter perturbed so norms and biases are exercised) and fixtures.safetensors with, for fixed inputs,
logits (first 128 vocabulary columns at every position plus the full last row), decoder hidden states, the image
processor's pixel values and grid, M-RoPE position ids, vision features, a masked cross-entropy loss and the
gradients of a few parameters of each module type. CI never runs this script; it only reads its outputs.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from PIL import Image

TINY = {
    "architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
    "image_token_id": 2060, "video_token_id": 2061,
    "vision_start_token_id": 2057, "vision_end_token_id": 2058,
    "tie_word_embeddings": True,
    "text_config": {
        "model_type": "qwen3_5_text", "vocab_size": 2112, "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 4, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
        "hidden_act": "silu", "rms_norm_eps": 1e-6, "max_position_embeddings": 4096,
        "full_attention_interval": 2,
        "layer_types": ["linear_attention", "full_attention", "linear_attention", "full_attention"],
        "linear_conv_kernel_dim": 4, "linear_key_head_dim": 16, "linear_value_head_dim": 16,
        "linear_num_key_heads": 2, "linear_num_value_heads": 4,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000000, "partial_rotary_factor": 0.25,
                            "mrope_section": [2, 1, 1], "mrope_interleaved": True},
        "attention_bias": False, "tie_word_embeddings": True, "eos_token_id": 2050, "pad_token_id": 2048,
    },
    "vision_config": {
        "model_type": "qwen3_5", "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
        "in_channels": 3, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
        "out_hidden_size": 64, "num_position_embeddings": 64, "hidden_act": "gelu_pytorch_tanh",
        "deepstack_visual_indexes": [],
    },
}

# Parameters whose gradients are recorded (one or more of each module type).
GRAD_TEXT = [
    "model.language_model.embed_tokens.weight",
    "model.language_model.norm.weight",
    "model.language_model.layers.0.input_layernorm.weight",
    "model.language_model.layers.0.linear_attn.in_proj_qkv.weight",
    "model.language_model.layers.0.linear_attn.in_proj_z.weight",
    "model.language_model.layers.0.linear_attn.in_proj_a.weight",
    "model.language_model.layers.0.linear_attn.in_proj_b.weight",
    "model.language_model.layers.0.linear_attn.conv1d.weight",
    "model.language_model.layers.0.linear_attn.A_log",
    "model.language_model.layers.0.linear_attn.dt_bias",
    "model.language_model.layers.0.linear_attn.norm.weight",
    "model.language_model.layers.0.linear_attn.out_proj.weight",
    "model.language_model.layers.1.self_attn.q_proj.weight",
    "model.language_model.layers.1.self_attn.k_proj.weight",
    "model.language_model.layers.1.self_attn.q_norm.weight",
    "model.language_model.layers.1.self_attn.k_norm.weight",
    "model.language_model.layers.1.mlp.gate_proj.weight",
    "model.language_model.layers.3.post_attention_layernorm.weight",
]
GRAD_VISION = [
    "model.visual.patch_embed.proj.weight",
    "model.visual.pos_embed.weight",
    "model.visual.blocks.0.norm1.weight",
    "model.visual.blocks.0.attn.qkv.weight",
    "model.visual.blocks.1.mlp.linear_fc1.bias",
    "model.visual.merger.norm.bias",
    "model.visual.merger.linear_fc2.weight",
]


def masked_ce(logits, ids, mask):
    """Mean next-token cross-entropy over positions whose target has mask 1."""
    lp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -lp.gather(-1, ids[:, 1:, None]).squeeze(-1)
    m = mask[:, 1:].float()
    return (nll * m).sum() / m.sum()


def main(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = Qwen3_5Config(**TINY)
    config._attn_implementation = "eager"
    config.text_config._attn_implementation = "eager"
    config.vision_config._attn_implementation = "eager"
    model = Qwen3_5ForConditionalGeneration(config).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(out, safe_serialization=True)
    rec = {}

    # 1. Text only: two sequences of 70 tokens (two chunks of the delta rule), with hidden states and a loss.
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 2048, (2, 70), generator=g)
    mask = (torch.rand(2, 70, generator=g) > 0.3).long()
    layer_outs = []
    hooks = [l.register_forward_hook(lambda m, i, o: layer_outs.append(o[0] if isinstance(o, tuple) else o))
             for l in model.model.language_model.layers]
    logits = model(input_ids=ids).logits
    for h in hooks:
        h.remove()
    loss = masked_ce(logits, ids, mask)
    model.zero_grad()
    loss.backward()
    params = dict(model.named_parameters())
    rec["text.input_ids"] = ids.to(torch.int64)
    rec["text.loss_mask"] = mask.to(torch.int64)
    rec["text.logits_head"] = logits[:, :, :128].detach()
    rec["text.logits_last"] = logits[:, -1, :].detach()
    rec["text.embeds"] = model.model.language_model.embed_tokens(ids).detach()
    for i, h in enumerate(layer_outs):
        rec[f"text.layer_out.{i}"] = h.detach()
    rec["text.loss"] = loss.detach().reshape(1)
    for n in GRAD_TEXT:
        rec[f"text.grad.{n}"] = params[n].grad.detach().clone()

    # 2. Image + text: a 64x96 RGB image → grid (1, 4, 6) → 6 placeholder tokens.
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
    proc = Qwen2VLImageProcessorPil(
        patch_size=16, temporal_patch_size=2, merge_size=2,
        size={"shortest_edge": 4096, "longest_edge": 65536},
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    enc = proc(images=[Image.fromarray(pixels)], return_tensors="pt")
    pv, grid = enc["pixel_values"], enc["image_grid_thw"]
    n_img = int(grid.prod() // 4)
    ids2 = torch.tensor([[11, 12, 13, 2057] + [2060] * n_img + [2058, 14, 15, 16, 17, 18]])
    tt = (ids2 == 2060).long()
    pos, deltas = model.model.get_rope_index(ids2, mm_token_type_ids=tt, image_grid_thw=grid)
    mask2 = torch.ones_like(ids2)
    mask2[:, : 4 + n_img + 1] = 0
    model.zero_grad()
    out2 = model(input_ids=ids2, pixel_values=pv, image_grid_thw=grid, mm_token_type_ids=tt)
    loss2 = masked_ce(out2.logits, ids2, mask2)
    loss2.backward()
    feats = model.model.get_image_features(pv, grid).pooler_output[0]
    rec["image.rgb"] = torch.from_numpy(pixels.astype(np.int64))
    rec["image.pixel_values"] = pv.float()
    rec["image.grid_thw"] = grid.to(torch.int64)
    rec["image.input_ids"] = ids2.to(torch.int64)
    rec["image.loss_mask"] = mask2.to(torch.int64)
    rec["image.position_ids"] = pos.to(torch.int64)
    rec["image.rope_deltas"] = deltas.to(torch.int64).reshape(-1)
    rec["image.features"] = feats.detach()
    rec["image.logits"] = out2.logits.detach()
    rec["image.loss"] = loss2.detach().reshape(1)
    for n in GRAD_VISION:
        rec[f"image.grad.{n}"] = params[n].grad.detach().clone()

    save_file({k: v.contiguous() for k, v in rec.items()}, str(out / "fixtures.safetensors"))
    (out / "fixtures.json").write_text(json.dumps({
        "transformers": transformers.__version__, "torch": torch.__version__,
        "text_loss": float(loss), "image_loss": float(loss2), "grid": grid.tolist(),
    }, indent=1) + "\n")
    print("wrote", out, "loss", float(loss), float(loss2), "grid", grid.tolist())


def record_from_dir(model_dir: Path, out: Path):
    """Records compact outputs of an existing model directory (for the real-vocabulary preset, whose weights are
    too large to commit: the Rust test regenerates them from the same seed). Per position: the log-sum-exp over the
    whole vocabulary and the logits of 64 fixed columns spread over it."""
    model = Qwen3_5ForConditionalGeneration.from_pretrained(model_dir).float().eval()
    vocab = model.config.text_config.vocab_size
    ids = torch.tensor([[248045, 872, 198, 9419, 0, 220, 97169, 248053, 248054, 240000, 151643, 248046, 5]]) % vocab
    cols = torch.linspace(0, vocab - 1, 64).long()
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    save_file({
        "input_ids": ids.to(torch.int64),
        "columns": cols.to(torch.int64),
        "logits_columns": logits[:, :, cols].contiguous(),
        "logsumexp": torch.logsumexp(logits, dim=-1).contiguous(),
    }, str(out))
    print("wrote", out)


def record_processor(out: Path):
    """Image processor outputs (PIL backend, bicubic) for images that need resizing: an upscale (50x70 → 64x64)
    and a mixed one (100x150 → 96x160), with the tiny presets' pixel bounds."""
    proc = Qwen2VLImageProcessorPil(
        patch_size=16, temporal_patch_size=2, merge_size=2,
        size={"shortest_edge": 4096, "longest_edge": 65536},
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    rng = np.random.default_rng(3)
    rec = {}
    for i, (h, w) in enumerate([(50, 70), (100, 150)]):
        # A smooth gradient plus noise, so both interpolation and clipping are exercised.
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], axis=-1)
        pixels = np.clip(base + rng.normal(0, 40, size=(h, w, 3)), 0, 255).astype(np.uint8)
        enc = proc(images=[Image.fromarray(pixels)], return_tensors="pt")
        rec[f"{i}.rgb"] = torch.from_numpy(pixels)
        rec[f"{i}.pixel_values"] = enc["pixel_values"].float()
        rec[f"{i}.grid_thw"] = enc["image_grid_thw"].to(torch.int64)
    save_file({k: v.contiguous() for k, v in rec.items()}, str(out))
    print("wrote", out)


def check_load(model_dir: Path):
    """Loads a directory written by `sgvlm model init` with transformers and reports the loss of a forward pass
    (≈ ln(vocab) for random weights) and any tensor transformers had to initialise itself."""
    model, info = Qwen3_5ForConditionalGeneration.from_pretrained(model_dir, output_loading_info=True)
    model = model.float().eval()
    missing = info.get("missing_keys", [])
    unexpected = info.get("unexpected_keys", [])
    ids = torch.randint(0, 2000, (1, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss
    vocab = model.config.text_config.vocab_size
    print(f"loaded {model_dir}: missing {missing}, unexpected {unexpected}, loss {float(loss):.4f} "
          f"(ln V = {np.log(vocab):.4f})")
    if missing or unexpected:
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--check-load":
        check_load(Path(sys.argv[2]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--processor":
        record_processor(Path(sys.argv[2]))
    elif len(sys.argv) > 3 and sys.argv[1] == "--record":
        record_from_dir(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main(Path(sys.argv[1] if len(sys.argv) > 1 else "crates/model/tests/fixtures/tiny"))
