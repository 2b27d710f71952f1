#!/usr/bin/env python3
"""Hugging Face reference logits for the real Gemma 3 270M weights (the llama.cpp GGUF).

Reads models/src/gemma-3-270m-q4_k_m.gguf with gguf-py, dequantizes every tensor to float32
(gguf.quants.dequantize), renames it back to the Hugging Face Gemma3ForCausalLM name
(REFERENCE 5.4), subtracts 1 from every *norm.weight (the GGUF stores 1 + w, HF stores w and
computes 1 + w; q_norm/k_norm included), builds a Gemma3TextConfig with the 270M values
(checked against the GGUF metadata), loads the state dict into Gemma3ForCausalLM in float32
with attn_implementation="eager", and records logits of a few prompts.

So the reference is "transformers on exactly the weights the GGUF holds" (quantization error
included): a C forward of the f32 .gemini converted from the same GGUF must match it to
float32 rounding.

Prompt ids: BOS (2) followed by SentencePiece BPE ids without a dummy prefix, from
models/gemma3-rebuilt.model (made by tools/tokenizer_fixtures.py) or, if that file is missing,
from a ModelProto rebuilt here from the GGUF's tokenizer arrays (the same recipe). The ids are
written into the fixture so the C side need not tokenize.

Output: tests/fixtures/gemma3-270m/reference.txt (format in that folder's README.md).

Usage (about 3 minutes on 2 cores):
    /tmp/fxenv/bin/pip install gguf sentencepiece protobuf   # + torch, transformers (5.25)
    /tmp/fxenv/bin/python tools/make_real_reference.py [GGUF] [OUT_DIR]
"""
import hashlib
import importlib.metadata
import os
import sys
import time

import numpy as np
import torch

import gguf
from gguf import GGUFReader
import sentencepiece as spm
from transformers import Gemma3ForCausalLM, Gemma3TextConfig
import transformers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOPK = 20
N_GREEDY = 16

LONG_TEXT = (
    "The river rises in the hills to the east of the old town, where a chain of small springs "
    "feeds a marsh that was drained in the eighteenth century. From there it runs west through "
    "farmland, turning three mills that still stand, although only one of them grinds grain "
    "today. The second mill was converted into a museum of rural life in 1974, and the third "
    "is a private house whose owners open the garden to visitors on the first Sunday of every "
    "month. Below the mills the valley narrows, the current quickens, and the water passes "
    "under a stone bridge of five arches that local people call the Bishop's Bridge, after the "
    "man who paid for it in 1352.\n\n"
    "The town grew up around that bridge. For centuries it was the only crossing for twenty "
    "miles in either direction, and merchants bringing wool from the uplands to the coast had "
    "to pay a toll to cross it. The toll house survives at the southern end; its walls carry a "
    "painted board listing the charges for a cart, a horse, a flock of sheep and a single "
    "traveller on foot. In 1820 the town council bought the bridge from the bishop's heirs and "
    "abolished the toll, and within twenty years the population had doubled. A railway arrived "
    "in 1848, a cotton mill in 1851, and a grammar school, a hospital and a public library "
    "followed before the end of the century.\n\n"
    "Today the town has about eleven thousand inhabitants. The cotton mill closed in 1962 and "
    "its buildings now hold workshops, a cinema and a climbing wall. The railway station, "
    "rebuilt after a fire in 1911, is served by two trains an hour to the city and one an hour "
    "to the coast. The market, held every Tuesday and Saturday in the square in front of the "
    "church, sells vegetables from the surrounding farms, cheese from the uplands and fish "
    "brought in that morning from the harbour forty minutes away. In summer the riverside path "
    "is busy with walkers and cyclists, and a small ferry carries visitors downstream to the "
    "ruins of an abbey that was dissolved in 1539.\n\n"
    "The abbey deserves a longer visit than most people give it. Its church was one of the "
    "largest in the region, and the surviving west front, with its three tall windows and its "
    "carved doorway, shows how rich the community once was. The monks kept bees, brewed beer, "
    "copied books and ran a school for the sons of local landowners. When the abbey was closed, "
    "its lands were sold to a family of lawyers from the city, who used the stone of the "
    "cloister to build a manor house on the hill above the ruins. The house burned down in "
    "1790, and its own ruins, overgrown with ivy, are now harder to find than the abbey's. A "
    "footpath climbs from the ferry landing through an oak wood to the site, and on a clear "
    "day the view from the top reaches across the estuary to the lighthouse on the far shore."
)

PROMPTS = [
    ("france", "The capital of France is"),
    ("qa", "Question: What is the capital of France?\nAnswer:"),
    ("city", "The capital of France is the city of"),
    ("long", LONG_TEXT),
]

# GGUF per-layer names -> HF Gemma3ForCausalLM names (REFERENCE 5.4).
LAYER_MAP = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def field(reader, key, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def hf_name(name):
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[3] == "weight" and parts[2] in LAYER_MAP:
        return "model.layers.%s.%s.weight" % (parts[1], LAYER_MAP[parts[2]])
    raise SystemExit("unexpected GGUF tensor %s" % name)


def make_config(reader):
    """The HF 270M values; each one that the GGUF also carries is checked against it."""
    cfg = dict(hidden_size=640, intermediate_size=2048, num_hidden_layers=18,
               num_attention_heads=4, num_key_value_heads=1, head_dim=256,
               query_pre_attn_scalar=256, sliding_window=512, rms_norm_eps=1e-6,
               vocab_size=262144, max_position_embeddings=32768)
    arch = field(reader, "general.architecture")
    assert arch == "gemma3", arch
    checks = {
        "hidden_size": "gemma3.embedding_length",
        "intermediate_size": "gemma3.feed_forward_length",
        "num_hidden_layers": "gemma3.block_count",
        "num_attention_heads": "gemma3.attention.head_count",
        "num_key_value_heads": "gemma3.attention.head_count_kv",
        "head_dim": "gemma3.attention.key_length",
        "sliding_window": "gemma3.attention.sliding_window",
        "max_position_embeddings": "gemma3.context_length",
    }
    for k, key in checks.items():
        v = field(reader, key)
        assert v is not None and int(v) == cfg[k], (k, key, v)
    assert int(field(reader, "gemma3.attention.value_length")) == 256
    assert abs(float(field(reader, "gemma3.attention.layer_norm_rms_epsilon")) - 1e-6) < 1e-12
    assert float(field(reader, "gemma3.rope.freq_base")) == 1e6
    assert float(field(reader, "gemma3.rope.freq_base_swa", 10000.0)) == 10000.0
    assert field(reader, "gemma3.final_logit_softcapping") is None
    assert field(reader, "gemma3.attn_logit_softcapping") is None
    assert len(reader.fields["tokenizer.ggml.tokens"].data) == cfg["vocab_size"]
    n = cfg["num_hidden_layers"]
    layer_types = ["sliding_attention" if (i + 1) % 6 else "full_attention" for i in range(n)]
    config = Gemma3TextConfig(
        **cfg,
        layer_types=layer_types,
        rope_parameters={
            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        },
        hidden_activation="gelu_pytorch_tanh",
        attn_logit_softcapping=None, final_logit_softcapping=None,
        tie_word_embeddings=True, bos_token_id=2, eos_token_id=1, pad_token_id=0,
        attention_bias=False, attention_dropout=0.0,
    )
    config._attn_implementation = "eager"
    return config


def load_state_dict(reader):
    sd = {}
    for t in reader.tensors:
        w = gguf.quants.dequantize(t.data, t.tensor_type)
        w = np.asarray(w, dtype=np.float32)
        # gguf-py's numpy shape is already the ggml dims reversed, i.e. PyTorch [out, in].
        shape = tuple(int(x) for x in reversed(t.shape))
        w = w.reshape(shape)
        if t.name.endswith("norm.weight"):
            w = w - np.float32(1.0)          # GGUF stores 1 + w
        sd[hf_name(t.name)] = torch.from_numpy(np.ascontiguousarray(w))
    return sd


def tokenizer(gguf_path, reader):
    path = os.path.join(ROOT, "models/gemma3-rebuilt.model")
    if os.path.exists(path):
        return spm.SentencePieceProcessor(model_file=path), path
    from sentencepiece import sentencepiece_model_pb2 as pb
    tokens = field(reader, "tokenizer.ggml.tokens")
    scores = field(reader, "tokenizer.ggml.scores")
    types = field(reader, "tokenizer.ggml.token_type")
    ids = {k: int(field(reader, "tokenizer.ggml.%s_token_id" % k))
           for k in ("unknown", "bos", "eos", "padding")}
    proto = pb.ModelProto()
    for i, (piece, score, kind) in enumerate(zip(tokens, scores, types)):
        sp = proto.pieces.add()
        sp.piece, sp.score = piece, float(score)
        sp.type = pb.ModelProto.SentencePiece.UNKNOWN if i == ids["unknown"] else int(kind)
    t = proto.trainer_spec
    t.model_type, t.vocab_size, t.byte_fallback = pb.TrainerSpec.BPE, len(tokens), True
    t.unk_id, t.bos_id, t.eos_id, t.pad_id = (ids["unknown"], ids["bos"], ids["eos"],
                                             ids["padding"])
    n = proto.normalizer_spec
    n.name, n.add_dummy_prefix, n.remove_extra_whitespaces, n.escape_whitespaces = (
        "identity", False, False, True)
    return spm.SentencePieceProcessor(model_proto=proto.SerializeToString()), \
        "rebuilt from " + os.path.basename(gguf_path)


def row_line(tag, p, row):
    """`TAG P maxabs M lse L top id:logit ...` for one logits row (float32 tensor)."""
    row64 = row.double()
    lse = torch.logsumexp(row64, 0).item()
    maxabs = row.abs().max().item()
    vals, idx = torch.topk(row, TOPK)
    top = " ".join("%d:%.6f" % (i, v) for i, v in zip(idx.tolist(), vals.tolist()))
    return "%s %d maxabs %.6f lse %.6f top %s" % (tag, p, maxabs, lse, top)


def gap(row):
    v = torch.topk(row, 2).values
    return (v[0] - v[1]).item()


def main():
    gguf_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        ROOT, "models/src/gemma-3-270m-q4_k_m.gguf")
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        ROOT, "tests/fixtures/gemma3-270m")
    torch.set_num_threads(2)
    torch.manual_seed(0)
    t0 = time.time()
    with open(gguf_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    reader = GGUFReader(gguf_path)
    config = make_config(reader)
    sd = load_state_dict(reader)
    model = Gemma3ForCausalLM(config).to(torch.float32).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert set(missing) <= {"lm_head.weight"}, missing
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), \
        "lm_head is not tied to embed_tokens"
    assert model.config._attn_implementation == "eager"
    for layer in model.model.layers:
        assert layer.self_attn.config._attn_implementation == "eager"
    assert model.model.embed_tokens.embed_scale.dtype == torch.float32
    embed_scale = model.model.embed_tokens.embed_scale.item()
    print("loaded in %.1f s; embed_scale %.7f" % (time.time() - t0, embed_scale), flush=True)

    sp, tok_src = tokenizer(gguf_path, reader)
    lines = [
        "# Hugging Face reference for Gemma 3 270M on the dequantized GGUF weights.",
        "# made by tools/make_real_reference.py; format in README.md",
        "gguf %s sha256 %s" % (os.path.basename(gguf_path), sha),
        "versions transformers %s torch %s gguf-py %s sentencepiece %s" % (
            transformers.__version__, torch.__version__,
            importlib.metadata.version("gguf"), spm.__version__),
        "config dtype float32 attn eager embed_scale %.7f window 512 global 5,11,17 "
        "rope 1e6/1e4" % embed_scale,
        "tokenizer %s" % os.path.basename(tok_src),
        "topk %d greedy %d" % (TOPK, N_GREEDY),
    ]
    summary = []
    with torch.no_grad():
        for name, text in PROMPTS:
            ids = [2] + sp.encode(text)
            n = len(ids)
            t1 = time.time()
            logits = model(torch.tensor([ids])).logits[0].float()
            print("%s: %d ids, forward %.1f s" % (name, n, time.time() - t1), flush=True)
            assert logits.shape == (n, config.vocab_size)
            lines.append("prompt %s %d" % (name, n))
            lines.append("text %s" % text.encode("unicode_escape").decode("ascii"))
            lines.append("input " + " ".join(map(str, ids)))
            if name == "long":
                positions = sorted(set(list(range(0, n, 50)) + [511, 512, 513, n - 1]))
                positions = [p for p in positions if p < n]
            else:
                positions = range(n)
            for p in positions:
                lines.append(row_line("pos", p, logits[p]))
            # Greedy: hand argmax loop. Short prompts re-run the whole sequence each step;
            # the long one (16 x 600 tokens would be slow) uses HF's cache.
            new, gaps, steps = [], [], []
            row = logits[n - 1]
            if name == "long":
                out = model(torch.tensor([ids]), use_cache=True, logits_to_keep=1)
                cache = out.past_key_values
                row = out.logits[0, -1].float()
                assert torch.allclose(row, logits[n - 1], atol=1e-4, rtol=0)
            for s in range(N_GREEDY):
                steps.append(row_line("step", s, row))
                tok = int(torch.argmax(row).item())
                new.append(tok)
                gaps.append(gap(row))
                if s == N_GREEDY - 1:
                    break
                if name == "long":
                    out = model(torch.tensor([[tok]]), past_key_values=cache, use_cache=True)
                    cache = out.past_key_values
                    row = out.logits[0, -1].float()
                else:
                    row = model(torch.tensor([ids + new])).logits[0, -1].float()
            if name == "long":   # check the cached decode once against a full re-forward
                full = model(torch.tensor([ids + new[:-1]]), logits_to_keep=1).logits[0, -1]
                diff = (full.float() - row).abs().max().item()
                print("long: cached vs full re-forward at the last step: max diff %.3g" % diff)
                assert diff < 1e-3 * row.abs().max().item(), diff
                assert int(torch.argmax(full).item()) == new[-1]
            lines.append("greedy " + " ".join(map(str, new)))
            lines.append("gaps " + " ".join("%.6f" % g for g in gaps))
            lines.extend(steps)
            lines.append("end")
            summary.append((name, n, new, gaps, sp.decode(new),
                            [(sp.id_to_piece(int(i)), round(float(v), 3)) for v, i in
                             zip(*torch.topk(logits[n - 1], 5))]))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "reference.txt"), "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    for name, n, new, gaps, text, top5 in summary:
        print("%-7s %4d ids -> %r  (min gap %.4f)" % (name, n, text, min(gaps)))
        print("        last-position top5: %s" % top5)
    print("wrote %s in %.1f s" % (os.path.join(out_dir, "reference.txt"), time.time() - t0))


if __name__ == "__main__":
    main()
