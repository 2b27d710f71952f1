#!/usr/bin/env python3
"""Build a tiny random-weight Gemma 3 vision-language reference fixture with transformers.

How to run (by hand; needs the packages pinned in tools/requirements-fixtures.txt):

    /tmp/fxenv/bin/python tools/make_gemma3_vision_fixtures.py tests/fixtures/gemma3-vision

The model is a Gemma3ForConditionalGeneration: a SigLIP tower (56 px, patches of 14, so a 4 x 4
grid) whose output is average-pooled to 4 soft tokens per image, RMS-normed and projected into a
Gemma 3 decoder with a sliding window of 3 (shorter than an image's 4 soft tokens, so that the
sliding layers' mask rule matters). It writes into OUTDIR:

    hf/                  config.json, generation_config.json, model.safetensors (f32) as
                         transformers 5.25's save_pretrained writes them (language_model.model.*,
                         vision_tower.*, multi_modal_projector.*); no tokenizer files (the test
                         feeds token ids)
    hf-released/         the same weights as google/gemma-3-4b-it stores them: the released
                         names (language_model.model.*, vision_tower.vision_model.*,
                         multi_modal_projector.*), bfloat16 matrices (f32 vectors and position
                         table), the same config.json; a bf16 conversion equals that of hf/
    one/, two/           a prompt with one image and one with two, each:
      pixel_values.f32   [n, 3, S, S] what Gemma3ImageProcessorPil makes of the images
                         (bilinear resize to S x S, x 1/255, mean 0.5, std 0.5)
      vision.f32         [n, P, Dv] the SigLIP output (after post_layernorm), P = 16 patches
      image_embd.f32     [n, T, d] the projector's output (pooled, normed, projected), T = 4
      logits_prompt.f32  [L, vocab] logits at every prompt position, with token_type_ids
                         marking the image soft tokens (bidirectional within each image)
      logits_greedy.f32  [16, vocab] the logits of each greedy step (last position)
      reference.txt      what the C test reads (below); reference.json has more

reference.txt lines:
    image PATH S         one line per image, in prompt order (path relative to the repository)
    input ID ...         the prompt ids: the chat template with each image marker expanded as
                         Gemma3Processor does ("\\n\\n" <start_of_image> <image_soft_token> x T
                         <end_of_image> "\\n\\n"; here "\\n\\n" etc. are stand-in ids)
    prefix 0             no PaliGemma prefix: the bidirectional spans are the images' own
    greedy ID ...        16 greedy tokens from model.generate
    gaps G ...           top-1 minus top-2 logit of every greedy step
    causal_delta X       how far the logits move (max |diff| / max |logit|) when the prompt is
                         run with a plain causal mask (no token_type_ids)
    window_delta X       the same when the sliding layers let an image token see its whole
                         image instead of only what is inside its window (the mask rule of
                         transformers is AND(window, OR(causal, same image)))

Everything is computed from the model reloaded from hf/, so the files on disk are what is tested.
"""

import argparse
import json
import os
import shutil

import numpy as np
import torch
import transformers
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import (Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig,
                          SiglipVisionConfig)
from transformers import Gemma3ImageProcessorPil

IMAGES = ["tests/vision/pre_src300.png", "tests/vision/pre_src96.png"]
IMAGE_SIZE = 56                 # 4 x 4 patches of 14
MM_TOKENS = 4                   # pooled 2 x 2 (kernel 2)
VOCAB = 300
PAD, EOS, BOS = 0, 1, 2
SOT, EOT = 105, 106             # <start_of_turn>, <end_of_turn>
NL, NL2, NL3, NL4 = 107, 108, 109, 110   # "\n", "\n\n", "\n\n\n", "\n\n\n\n"
USER, MODEL = 131, 132          # "user", "model"
BOI, EOI, IMAGE = 255, 256, 262  # <start_of_image>, <end_of_image>, <image_soft_token>
NEW_TOKENS = 16
MIN_GAP = 1e-3
MATRIX_STD = 0.4
EMBED_STD = 0.1
NORM_STD = 0.3
VISION_STD = 0.15
SEED_SCAN = 32
SEED = 900

VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              image_size=IMAGE_SIZE, patch_size=14, hidden_act="gelu_pytorch_tanh",
              layer_norm_eps=1e-6, vision_use_head=False)

TEXT = dict(vocab_size=VOCAB, hidden_size=48, intermediate_size=64, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16,
            sliding_window=3, max_position_embeddings=256, rms_norm_eps=1e-6,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
            rope_parameters={"full_attention": {"rope_type": "linear", "factor": 8.0,
                                                "rope_theta": 1000000.0},
                             "sliding_attention": {"rope_type": "default",
                                                   "rope_theta": 10000.0}},
            hidden_activation="gelu_pytorch_tanh", pad_token_id=PAD, eos_token_id=EOS,
            bos_token_id=BOS)


def image_sequence():
    """What Gemma3Processor puts in the place of one <start_of_image> marker."""
    return [BOI] + [IMAGE] * MM_TOKENS + [EOI]


def prompt(n_images, text):
    """<bos><start_of_turn>user\\n{markers}{text}<end_of_turn>\\n<start_of_turn>model\\n with each
    marker expanded; the newlines around the images merge into one piece as the Gemma
    tokenizer merges them ("\\n" + "\\n\\n" is "\\n\\n\\n"; "\\n\\n" twice is
    "\\n\\n\\n\\n")."""
    ids = [BOS, SOT, USER, NL3]
    for i in range(n_images):
        ids += image_sequence() + [NL4 if i + 1 < n_images else NL2]
    return ids + text + [EOT, NL, SOT, MODEL, NL]


CASES = [
    dict(name="one", images=IMAGES[:1], ids=prompt(1, [17, 211, 64, 150, 93])),
    dict(name="two", images=IMAGES, ids=prompt(2, [44, 150, 201, 93])),
]


def build_config():
    text = Gemma3TextConfig(**TEXT)
    vision = SiglipVisionConfig(**VISION)
    config = Gemma3Config(vision_config=vision.to_dict(), text_config=text.to_dict(),
                          mm_tokens_per_image=MM_TOKENS, boi_token_index=BOI,
                          eoi_token_index=EOI, image_token_index=IMAGE,
                          tie_word_embeddings=True)
    config._attn_implementation = "eager"
    return config


def build_model(seed):
    model = Gemma3ForConditionalGeneration(build_config()).to(torch.float32).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if "vision_tower" in name and ("layer_norm" in name or "layernorm" in name):
                base = 1.0 if name.endswith("weight") else 0.0
                value = base + 0.2 * torch.randn(param.shape, generator=generator)
            elif "vision_tower" in name or "mm_input_projection" in name:
                value = torch.randn(param.shape, generator=generator) * VISION_STD
            elif name.endswith("norm.weight"):   # Gemma RMSNorms (1 + w), the soft-token one too
                value = torch.randn(param.shape, generator=generator) * NORM_STD
            elif "embed_tokens" in name:
                value = torch.randn(param.shape, generator=generator) * EMBED_STD
            else:
                value = torch.randn(param.shape, generator=generator) * MATRIX_STD
            param.copy_(value.to(torch.float32))
    return model


def pixel_values(root, paths):
    processor = Gemma3ImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                        resample=2, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                                        do_pan_and_scan=False)
    images = [Image.open(os.path.join(root, p)).convert("RGB") for p in paths]
    values = processor(images=images, return_tensors="pt")["pixel_values"]
    assert values.shape == (len(paths), 3, IMAGE_SIZE, IMAGE_SIZE), values.shape
    return values.to(torch.float32)


def token_types(ids):
    return [1 if i == IMAGE else 0 for i in ids]


def forward(model, ids, pixels, types):
    kwargs = dict(input_ids=torch.tensor([ids]), pixel_values=pixels)
    if types is not None:
        kwargs["token_type_ids"] = torch.tensor([types])
    with torch.no_grad():
        return model(**kwargs).logits[0].to(torch.float32).numpy()


def top2_gap(row):
    top = np.sort(row.astype(np.float64))[-2:]
    return float(top[1] - top[0])


def hand_greedy(model, ids, pixels, steps):
    """Greedy decoding by re-running the whole sequence each step, the image soft tokens of the
    prompt marked (type 1) and the generated tokens text (type 0). The image rows are merged by
    hand, so that a generated <image_soft_token> id stays a text token."""
    positions = [i for i, t in enumerate(ids) if t == IMAGE]
    with torch.no_grad():
        rows = model.model.get_image_features(pixels).pooler_output.reshape(-1, TEXT["hidden_size"])
    seq, gaps = list(ids), []
    for _ in range(steps):
        types = token_types(ids) + [0] * (len(seq) - len(ids))
        with torch.no_grad():
            embeds = model.get_input_embeddings()(torch.tensor([seq]))
            embeds[0, positions] = rows
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
                             token_type_ids=torch.tensor([token_types(ids)]), do_sample=False,
                             max_new_tokens=steps, min_new_tokens=steps, eos_token_id=None,
                             pad_token_id=PAD, return_dict_in_generate=True, output_logits=True)
    tokens = out.sequences[0, len(ids):].tolist()
    logits = torch.stack([s[0] for s in out.logits]).to(torch.float32).numpy()
    return tokens, logits


def custom_mask_logits(model, ids, pixels, union):
    """The prompt's logits with masks built here from the rule as this script reads it: on the
    full layers OR(causal, same image); on the sliding layers AND(window, OR(causal, same
    image)), or with union set OR(AND(window, causal), same image), which lets an image token
    also see the tokens of its image that lie behind its window."""
    n = len(ids)
    groups, group = [], -1
    for i, t in enumerate(ids):
        if t == IMAGE and (i == 0 or ids[i - 1] != IMAGE):
            group += 1
        groups.append(group if t == IMAGE else -1)
    window = TEXT["sliding_window"]
    full = torch.full((1, 1, n, n), float("-inf"))
    sliding = torch.full((1, 1, n, n), float("-inf"))
    for q in range(n):
        for k in range(n):
            same = groups[q] >= 0 and groups[q] == groups[k]
            if k <= q or same:
                full[0, 0, q, k] = 0.0
            if union:
                visible = (k <= q and k > q - window) or same
            else:
                visible = k > q - window and (k <= q or same)
            if visible:
                sliding[0, 0, q, k] = 0.0
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), pixel_values=pixels,
                     attention_mask={"full_attention": full, "sliding_attention": sliding}
                     ).logits[0].numpy()


def seed_score(model, cases, pixels):
    worst_gap, changes = float("inf"), 10
    for case in cases:
        tokens, gaps = hand_greedy(model, case["ids"], pixels[case["name"]], NEW_TOKENS)
        worst_gap = min(worst_gap, min(gaps))
        changes = min(changes, sum(a != b for a, b in zip(tokens, tokens[1:])))
    return (worst_gap > MIN_GAP, changes, worst_gap)


def save_released_layout(hf_dir, out_dir):
    """The tensors of hf/ as google/gemma-3-4b-it ships them: the released names
    (language_model.model.*, vision_tower.vision_model.*, multi_modal_projector.*) and bfloat16
    matrices. The vectors (norms, biases) and the position table, which the converter keeps in
    f32, stay float32 here, so that a bf16 conversion of either directory gives the same
    bytes."""
    tensors = load_file(os.path.join(hf_dir, "model.safetensors"))
    released = {}
    for name, value in tensors.items():
        if name.startswith("vision_tower.") and not name.startswith("vision_tower.vision_model."):
            name = "vision_tower.vision_model." + name[len("vision_tower."):]
        elif name.startswith("model.language_model."):
            name = "language_model.model." + name[len("model.language_model."):]
        elif name.startswith("model.vision_tower."):
            name = "vision_tower.vision_model." + name[len("model.vision_tower."):]
        elif name.startswith("model.multi_modal_projector."):
            name = "multi_modal_projector." + name[len("model.multi_modal_projector."):]
        matrix = value.dim() >= 2 and "position_embedding" not in name
        released[name] = value.to(torch.bfloat16) if matrix else value
    assert any(n.startswith("language_model.model.") for n in released)
    assert any(n.startswith("vision_tower.vision_model.") for n in released)
    assert any(n.startswith("multi_modal_projector.") for n in released)
    os.makedirs(out_dir)
    save_file(released, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(os.path.join(hf_dir, "config.json"), os.path.join(out_dir, "config.json"))
    return sorted(released)


def write_case(model, case, pixels, out):
    ids = case["ids"]
    os.makedirs(out)
    with torch.no_grad():
        vision = model.model.vision_tower(pixels).last_hidden_state.numpy()
        image_embd = model.model.get_image_features(pixels).pooler_output.numpy()
    types = token_types(ids)
    logits = forward(model, ids, pixels, types)
    causal = forward(model, ids, pixels, None)
    causal_delta = float(np.abs(causal - logits).max() / np.abs(logits).max())
    scale = np.abs(logits).max()
    own_rule = float(np.abs(custom_mask_logits(model, ids, pixels, False) - logits).max() / scale)
    assert own_rule <= 1e-6, f"the mask rule read from transformers is wrong: {own_rule}"
    window_delta = float(np.abs(custom_mask_logits(model, ids, pixels, True) - logits).max() /
                         scale)
    tokens, greedy_logits = hf_generate(model, ids, pixels, NEW_TOKENS)
    hand_tokens, gaps = hand_greedy(model, ids, pixels, NEW_TOKENS)
    assert tokens == hand_tokens, (tokens, hand_tokens)
    assert np.abs(greedy_logits[0] - logits[-1]).max() <= 1e-5 * np.abs(logits).max()

    pixels.numpy().astype("<f4").tofile(os.path.join(out, "pixel_values.f32"))
    vision.astype("<f4").tofile(os.path.join(out, "vision.f32"))
    image_embd.astype("<f4").tofile(os.path.join(out, "image_embd.f32"))
    logits.astype("<f4").tofile(os.path.join(out, "logits_prompt.f32"))
    greedy_logits.astype("<f4").tofile(os.path.join(out, "logits_greedy.f32"))
    with open(os.path.join(out, "reference.txt"), "w") as f:
        for path in case["images"]:
            f.write(f"image {path} {IMAGE_SIZE}\n")
        f.write("input " + " ".join(map(str, ids)) + "\n")
        f.write("prefix 0\n")
        f.write("greedy " + " ".join(map(str, tokens)) + "\n")
        f.write("gaps " + " ".join(f"{g:.6g}" for g in gaps) + "\n")
        f.write(f"causal_delta {causal_delta:.6g}\n")
        f.write(f"window_delta {window_delta:.6g}\n")
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(dict(case=case["name"], images=case["images"], image_size=IMAGE_SIZE,
                       input=ids, greedy=tokens, gaps=gaps, vision_shape=list(vision.shape),
                       image_embd_shape=list(image_embd.shape), logits_shape=list(logits.shape),
                       max_abs_logit=float(np.abs(logits).max()), causal_delta=causal_delta,
                       window_delta=window_delta,
                       versions=dict(torch=torch.__version__,
                                     transformers=transformers.__version__)), f, indent=1)
    print(f"[{case['name']}] {len(ids)} prompt tokens, greedy {tokens}; a causal mask moves "
          f"the logits by {causal_delta:.3g}, whole-image sliding windows by {window_delta:.3g} "
          f"of max |logit|")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = os.path.abspath(args.root)
    pixels = {case["name"]: pixel_values(root, case["images"]) for case in CASES}

    best = None
    for seed in range(SEED, SEED + SEED_SCAN):
        score = seed_score(build_model(seed), CASES, pixels)
        if best is None or score > best[0]:
            best = (score, seed)
    (gap_ok, changes, worst_gap), seed = best
    print(f"seed {seed}: at least {changes} token changes, smallest gap {worst_gap:.4f}"
          f"{'' if gap_ok else ' (WARNING: below ' + str(MIN_GAP) + ')'}")

    out = args.outdir
    if os.path.isdir(out):
        shutil.rmtree(out)
    hf_dir = os.path.join(out, "hf")
    os.makedirs(hf_dir)
    build_model(seed).save_pretrained(hf_dir, safe_serialization=True)
    names = save_released_layout(hf_dir, os.path.join(out, "hf-released"))
    model = Gemma3ForConditionalGeneration.from_pretrained(
        hf_dir, attn_implementation="eager", dtype=torch.float32).eval()
    for case in CASES:
        write_case(model, case, pixels[case["name"]], os.path.join(out, case["name"]))
    with open(os.path.join(out, "fixture.json"), "w") as f:
        json.dump(dict(seed=seed, tensors_released_layout=names,
                       versions=dict(torch=torch.__version__,
                                     transformers=transformers.__version__)), f, indent=1)


if __name__ == "__main__":
    main()
