#!/usr/bin/env python3
"""Build tiny random-weight PaliGemma reference fixtures with Hugging Face transformers.

How to run (by hand; needs the packages pinned in tools/requirements-fixtures.txt):

    /tmp/fxenv/bin/python tools/make_paligemma_fixtures.py tests/fixtures/paligemma

For each variant (paligemma: a Gemma 1 decoder; paligemma2: a Gemma 2 decoder with soft-caps and
a sliding window shorter than the image prefix) it writes into OUTDIR/<variant>/:

    hf/                  config.json, generation_config.json, model.safetensors (f32), as written
                         by save_pretrained; no tokenizer files (the test feeds token ids)
    pixel_values.f32     [3, S, S] what SiglipImageProcessorPil makes of IMAGE (bicubic resize to
                         S x S, x 1/255, mean 0.5, std 0.5), little-endian float32
    vision.f32           [N, Dv] the SigLIP output (after post_layernorm) for those pixels
    image_embd.f32       [N, d] the projector's output: the rows that replace the <image> tokens
    logits_prompt.f32    [T, vocab] logits at every position of the prompt
                         <image> x N, BOS, prompt ids, "\\n" id, with the prefix-LM mask
    logits_greedy.f32    [16, vocab] the logits of each greedy step (last position)
    reference.txt        what the C test reads (below); reference.json has more

reference.txt lines:
    image PATH S         the source image (relative to the repository root) and the side S
    input ID ...         the prompt ids (T of them; image positions hold the image token id)
    prefix T             the bidirectional prefix length (the whole prompt)
    greedy ID ...        16 greedy tokens from model.generate
    gaps G ...           top-1 minus top-2 logit of every greedy step
    causal_delta X       how far the logits move (max |diff| / max |logit|) when the prompt is
                         run with a plain causal mask instead: the test's tolerance must be far
                         below this for the prefix-LM mask to be proven
    offset_delta X       the same for 0-based instead of PaliGemma's 1-based RoPE positions

Everything is computed from the model reloaded from hf/, so the files on disk are what is tested.
"""

import argparse
import json
import math
import os
import shutil

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import (Gemma2Config, GemmaConfig, PaliGemmaConfig,
                          PaliGemmaForConditionalGeneration, SiglipVisionConfig)
from transformers import SiglipImageProcessorPil

IMAGE = "tests/vision/pre_src300.png"
IMAGE_SIZE = 56                 # 4 x 4 patches of 14
VOCAB = 320
IMAGE_TOKEN = 300
BOS = 2
NEWLINE = 108
PROMPT = [17, 211, 64, 150, 93]  # arbitrary fixed ids standing for "caption en"
NEW_TOKENS = 16
MIN_GAP = 1e-3
MATRIX_STD = 0.4
EMBED_STD = 0.1
NORM_STD = 0.3
VISION_STD = 0.15               # SigLIP matrices: pixels in [-1, 1] over 588 inputs
SEED_SCAN = 16

VISION = dict(hidden_size=32, intermediate_size=72, num_hidden_layers=2, num_attention_heads=4,
              image_size=IMAGE_SIZE, patch_size=14, hidden_act="gelu_pytorch_tanh",
              layer_norm_eps=1e-6, vision_use_head=False)

TEXT_COMMON = dict(vocab_size=VOCAB, rms_norm_eps=1e-6, bos_token_id=BOS, eos_token_id=1,
                   pad_token_id=0, max_position_embeddings=256,
                   hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh")

VARIANTS = [
    dict(name="paligemma", seed=500, text_class=GemmaConfig,
         text=dict(TEXT_COMMON, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                   rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    dict(name="paligemma2", seed=700, text_class=Gemma2Config,
         text=dict(TEXT_COMMON, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                   query_pre_attn_scalar=24, sliding_window=8, attn_logit_softcapping=5.0,
                   final_logit_softcapping=3.0,
                   rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
]


def build_config(variant):
    text = variant["text_class"](**variant["text"])
    vision = SiglipVisionConfig(**VISION)
    config = PaliGemmaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                             image_token_index=IMAGE_TOKEN, vocab_size=VOCAB,
                             projection_dim=text.hidden_size, hidden_size=text.hidden_size,
                             tie_word_embeddings=True)
    config._attn_implementation = "eager"
    return config


def build_model(variant, seed):
    model = PaliGemmaForConditionalGeneration(build_config(variant)).to(torch.float32).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if "vision_tower" in name and ("layer_norm" in name or "layernorm" in name):
                # LayerNorm: weight around 1, bias around 0
                base = 1.0 if name.endswith("weight") else 0.0
                value = base + 0.2 * torch.randn(param.shape, generator=generator)
            elif "vision_tower" in name or "multi_modal_projector" in name:
                value = torch.randn(param.shape, generator=generator) * VISION_STD
            elif name.endswith("norm.weight"):
                value = torch.randn(param.shape, generator=generator) * NORM_STD
            elif "embed_tokens" in name:
                value = torch.randn(param.shape, generator=generator) * EMBED_STD
            else:
                value = torch.randn(param.shape, generator=generator) * MATRIX_STD
            param.copy_(value.to(torch.float32))
    return model


def pixel_values(root):
    processor = SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                        resample=3, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    image = Image.open(os.path.join(root, IMAGE)).convert("RGB")
    values = processor(images=image, return_tensors="pt")["pixel_values"]
    assert values.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE)
    return values.to(torch.float32)


def prompt_ids(config):
    n_image = (IMAGE_SIZE // VISION["patch_size"]) ** 2
    assert n_image == config.text_config.num_image_tokens
    return [IMAGE_TOKEN] * n_image + [BOS] + PROMPT + [NEWLINE]


def forward(model, ids, pixels, token_types):
    kwargs = dict(input_ids=torch.tensor([ids]), pixel_values=pixels)
    if token_types is not None:
        kwargs["token_type_ids"] = torch.tensor([token_types])
    with torch.no_grad():
        return model(**kwargs).logits[0].to(torch.float32).numpy()


def top2_gap(row):
    top = np.sort(row.astype(np.float64))[-2:]
    return float(top[1] - top[0])


def hand_greedy(model, ids, pixels, steps):
    """Greedy decoding by re-running the whole sequence: prompt as prefix (type 0), the tokens
    generated so far as suffix (type 1), which is the mask generate() builds step by step. The
    image rows are merged by hand, so that a generated image token id stays a text token."""
    n_image = ids.count(IMAGE_TOKEN)
    with torch.no_grad():
        image = model.model.get_image_features(pixels).pooler_output[0]
    seq, gaps = list(ids), []
    for _ in range(steps):
        types = [0] * len(ids) + [1] * (len(seq) - len(ids))
        with torch.no_grad():
            embeds = model.get_input_embeddings()(torch.tensor([seq]))
            embeds[0, :n_image] = image
            row = model(inputs_embeds=embeds, token_type_ids=torch.tensor([types])).logits[0, -1]
        row = row.to(torch.float32).numpy()
        gaps.append(top2_gap(row))
        seq.append(int(np.argmax(row)))
    return seq[len(ids):], gaps


def hf_generate(model, ids, pixels, steps):
    model.generation_config.eos_token_id = None
    input_ids = torch.tensor([ids])
    with torch.no_grad():
        out = model.generate(input_ids=input_ids, pixel_values=pixels,
                             attention_mask=torch.ones_like(input_ids),
                             token_type_ids=torch.zeros_like(input_ids), do_sample=False,
                             max_new_tokens=steps, min_new_tokens=steps, eos_token_id=None,
                             pad_token_id=0, return_dict_in_generate=True, output_logits=True)
    tokens = out.sequences[0, len(ids):].tolist()
    logits = torch.stack([s[0] for s in out.logits]).to(torch.float32).numpy()
    return tokens, logits


def seed_score(model, ids, pixels):
    tokens, gaps = hand_greedy(model, ids, pixels, NEW_TOKENS)
    changes = sum(a != b for a, b in zip(tokens, tokens[1:]))
    return (min(gaps) > MIN_GAP, min(changes, 10), min(gaps))


def rope_offset_delta(model, ids, pixels, reference):
    """Logit movement when the RoPE positions start at 0 instead of PaliGemma's 1."""
    positions = torch.arange(len(ids)).unsqueeze(0)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), pixel_values=pixels,
                       token_type_ids=torch.zeros(1, len(ids), dtype=torch.long),
                       position_ids=positions).logits[0].numpy()
    return float(np.abs(logits - reference).max() / np.abs(reference).max())


def make_variant(variant, root, out):
    pixels = pixel_values(root)
    ids = prompt_ids(build_config(variant))
    best = None
    for seed in range(variant["seed"], variant["seed"] + SEED_SCAN):
        score = seed_score(build_model(variant, seed), ids, pixels)
        if best is None or score > best[0]:
            best = (score, seed)
    (gap_ok, changes, worst_gap), seed = best
    print(f"[{variant['name']}] seed {seed}: {changes} token changes, smallest gap "
          f"{worst_gap:.4f}{'' if gap_ok else ' (WARNING: below ' + str(MIN_GAP) + ')'}")

    hf_dir = os.path.join(out, "hf")
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(hf_dir)
    build_model(variant, seed).save_pretrained(hf_dir, safe_serialization=True)
    model = PaliGemmaForConditionalGeneration.from_pretrained(
        hf_dir, attn_implementation="eager", dtype=torch.float32).eval()

    with torch.no_grad():
        vision = model.model.vision_tower(pixels).last_hidden_state[0].numpy()
        image_embd = model.model.get_image_features(pixels).pooler_output[0].numpy()
    prefix = [0] * len(ids)
    logits = forward(model, ids, pixels, prefix)
    causal = forward(model, ids, pixels, None)
    causal_delta = float(np.abs(causal - logits).max() / np.abs(logits).max())
    offset_delta = rope_offset_delta(model, ids, pixels, logits)
    tokens, greedy_logits = hf_generate(model, ids, pixels, NEW_TOKENS)
    hand_tokens, gaps = hand_greedy(model, ids, pixels, NEW_TOKENS)
    assert tokens == hand_tokens, (tokens, hand_tokens)
    assert np.abs(greedy_logits[0] - logits[-1]).max() <= 1e-5 * np.abs(logits).max()

    pixels[0].numpy().astype("<f4").tofile(os.path.join(out, "pixel_values.f32"))
    vision.astype("<f4").tofile(os.path.join(out, "vision.f32"))
    image_embd.astype("<f4").tofile(os.path.join(out, "image_embd.f32"))
    logits.astype("<f4").tofile(os.path.join(out, "logits_prompt.f32"))
    greedy_logits.astype("<f4").tofile(os.path.join(out, "logits_greedy.f32"))
    with open(os.path.join(out, "reference.txt"), "w") as f:
        f.write(f"image {IMAGE} {IMAGE_SIZE}\n")
        f.write("input " + " ".join(map(str, ids)) + "\n")
        f.write(f"prefix {len(ids)}\n")
        f.write("greedy " + " ".join(map(str, tokens)) + "\n")
        f.write("gaps " + " ".join(f"{g:.6g}" for g in gaps) + "\n")
        f.write(f"causal_delta {causal_delta:.6g}\n")
        f.write(f"offset_delta {offset_delta:.6g}\n")
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(dict(variant=variant["name"], seed=seed, image=IMAGE, image_size=IMAGE_SIZE,
                       input=ids, prefix=len(ids), greedy=tokens, gaps=gaps,
                       vision_shape=list(vision.shape), image_embd_shape=list(image_embd.shape),
                       logits_shape=list(logits.shape), max_abs_logit=float(np.abs(logits).max()),
                       causal_delta=causal_delta, offset_delta=offset_delta,
                       versions=dict(torch=torch.__version__,
                                     transformers=transformers.__version__)), f, indent=1)
    print(f"[{variant['name']}] greedy {tokens}; causal mask moves the logits by "
          f"{causal_delta:.3g}, 0-based positions by {offset_delta:.3g} of max |logit|")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    args = parser.parse_args()
    torch.set_num_threads(1)
    for variant in VARIANTS:
        make_variant(variant, os.path.abspath(args.root), os.path.join(args.outdir,
                                                                       variant["name"]))


if __name__ == "__main__":
    main()
