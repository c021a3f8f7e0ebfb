"""Write a tiny random-weight llama-architecture GGUF model for the llama.cpp interop run.

    python make_tiny_model.py OUT.gguf CHAT_TEMPLATE.jinja [--call-token]

Runs in the interop tool environment (numpy and the `gguf` package vendored in the same
llama.cpp tree as the server), not in the project's own environment. The weights are random,
so the server answers gibberish: the interop checks are about the wire, not the words.

The vocabulary is byte-level BPE (GPT-2's byte-to-unicode alphabet: every byte is one token, so
any text tokenizes), a handful of merges (llama.cpp requires the key), and the ChatML and tool
tokens the chat template uses. The chat template is given as a file (a tool-capable one, used by
the server with --jinja).

--call-token adds the template's whole call opening, `<tool_call>\n`, as one token, so a
logit_bias on it makes the random model open a tool call at once (the forced tool checks). A
model with it cannot serve tool_choice "auto": llama-server refuses the request with a 400,
because its lazy grammar's trigger word "<tool_call>\n" is then a token it does not preserve.
So the interop run writes two models: one without it (chat, "auto"), one with it (forced calls).
"""

from __future__ import annotations

import sys
from pathlib import Path

import gguf
import numpy as np

N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 128
N_LAYER = 2
N_CTX_TRAIN = 4096

SPECIALS = [
    ("<|endoftext|>", gguf.TokenType.CONTROL),
    ("<|im_start|>", gguf.TokenType.CONTROL),
    ("<|im_end|>", gguf.TokenType.CONTROL),
    ("<tool_call>", gguf.TokenType.USER_DEFINED),
    ("</tool_call>", gguf.TokenType.USER_DEFINED),
]
CALL_TOKEN = ("<tool_call>\n", gguf.TokenType.USER_DEFINED)  # --call-token only
MERGES = [("Ġ", "t"), ("h", "e"), ("i", "n"), ("e", "r"), ("Ġ", "a")]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (the byte-level BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


def vocabulary(call_token: bool) -> tuple[list[str], list[int], list[str]]:
    byte_chars = bytes_to_unicode()
    tokens = [byte_chars[b] for b in range(256)]
    types = [int(gguf.TokenType.NORMAL)] * 256
    merges = []
    for left, right in MERGES:
        merges.append(f"{left} {right}")
        tokens.append(left + right)
        types.append(int(gguf.TokenType.NORMAL))
    for text, kind in SPECIALS + ([CALL_TOKEN] if call_token else []):
        tokens.append(text)
        types.append(int(kind))
    return tokens, types, merges


def main() -> None:
    out, template_path = Path(sys.argv[1]), Path(sys.argv[2])
    tokens, types, merges = vocabulary(call_token="--call-token" in sys.argv[3:])
    n_vocab = len(tokens)
    ids = {t: i for i, t in enumerate(tokens)}
    rng = np.random.default_rng(1234)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    tmp = out.with_name(out.name + ".part")
    w = gguf.GGUFWriter(str(tmp), "llama")
    w.add_name("rig-sync-interop-tiny")
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(n_vocab)

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(ids["<|endoftext|>"])
    w.add_eos_token_id(ids["<|im_end|>"])
    w.add_eot_token_id(ids["<|im_end|>"])
    w.add_pad_token_id(ids["<|endoftext|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(template_path.read_text(encoding="utf-8"))

    # numpy shapes are ggml's ne reversed: token_embd ne = {n_embd, n_vocab} -> (n_vocab, n_embd).
    w.add_tensor("token_embd.weight", rand(n_vocab, N_EMBD))
    for i in range(N_LAYER):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", rand(N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_k.weight", rand(N_EMBD * N_HEAD_KV // N_HEAD, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_v.weight", rand(N_EMBD * N_HEAD_KV // N_HEAD, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_output.weight", rand(N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", rand(N_FF, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_up.weight", rand(N_FF, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_down.weight", rand(N_EMBD, N_FF))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor("output.weight", rand(n_vocab, N_EMBD))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(out)
    print(f"wrote {out} ({n_vocab} tokens, {N_LAYER} layers, n_embd {N_EMBD})")


if __name__ == "__main__":
    main()
