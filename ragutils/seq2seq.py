"""Pretraining a small BART from scratch: tokenizer, config, noise, training loop, cache.

Notebook 06 derives each piece by hand and then uses these functions. The model it
trains is saved in the course's store (``tools.store``) under ``models.SEQ2SEQ_DIR``,
keyed by the fingerprint of its settings, as the offline ``seq2seq`` model:
``models.load("seq2seq")`` reads it from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .tools import store

# BART's special tokens, in BART's order: <s>=0, <pad>=1, </s>=2, <unk>=3; then <mask>.
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


# --- tokenizer ----------------------------------------------------------------------------

def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096, min_frequency: int = 2) -> Any:
    """A byte-level BPE tokenizer trained on texts, wrapped as a transformers fast tokenizer.

    Derived in notebook 06, section 3.
    """
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=True)
    bpe.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=min_frequency,
                            show_progress=False, special_tokens=list(SPECIAL_TOKENS))
    bos, eos = bpe.token_to_id("<s>"), bpe.token_to_id("</s>")
    # Every encoded text becomes "<s> … </s>", as BART expects.
    bpe.post_processor = TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                            special_tokens=[("<s>", bos), ("</s>", eos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", mask_token="<mask>", model_max_length=512)


def tokenizer_hash(tokenizer: Any) -> str:
    """A short hash of a tokenizer's vocabulary (to key the model cache). Derived in notebook 06, section 7."""
    return store.fingerprint(sorted(tokenizer.get_vocab().items()))


# --- model ----------------------------------------------------------------------------------

def tiny_config(tokenizer: Any, d_model: int = 128, layers: int = 2, heads: int = 4, ffn: int = 512,
                max_positions: int = 512, dropout: float = 0.0) -> Any:
    """A tiny BartConfig (layers encoder and decoder layers) that matches the tokenizer's ids.

    Derived in notebook 06, section 6.
    """
    from transformers import BartConfig

    return BartConfig(
        vocab_size=len(tokenizer), d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=heads, decoder_attention_heads=heads,
        encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, max_position_embeddings=max_positions,
        dropout=dropout, attention_dropout=0.0, activation_dropout=0.0,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id,
        forced_bos_token_id=None, forced_eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True)


# --- the denoising objective ---------------------------------------------------------------

def text_infilling(ids: Sequence[int], mask_id: int, seed: int | np.random.Generator = 0,
                   mask_ratio: float = 0.3, poisson_lambda: float = 3.0) -> list[int]:
    """BART's text infilling: spans of Poisson(λ) length, covering mask_ratio of ids, each become one mask.

    Spans of length 0 insert a mask (the model must learn that nothing is missing there).

    Derived in notebook 06, section 4.2.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = len(ids)
    to_mask = int(round(mask_ratio * n))
    masked = np.zeros(n, dtype=bool)
    inserts: set[int] = set()
    for _ in range(100 * n + 10):  # spans may overlap; stop once enough tokens are covered
        left = to_mask - int(masked.sum())
        if left <= 0:
            break
        length = min(int(rng.poisson(poisson_lambda)), left)
        start = int(rng.integers(0, n - length + 1))
        if length == 0:
            inserts.add(start)
        masked[start:start + length] = True
    out: list[int] = []
    for i, token in enumerate(ids):
        if i in inserts and not masked[i] and (not out or out[-1] != mask_id):
            out.append(mask_id)
        if masked[i]:
            if not out or out[-1] != mask_id:
                out.append(mask_id)  # a whole span becomes one mask
        else:
            out.append(int(token))
    return out


# --- batches and training --------------------------------------------------------------------

def encode_pairs(tokenizer: Any, sources: Sequence[str], targets: Sequence[str],
                 max_source: int = 128, max_target: int = 32) -> list[tuple[list[int], list[int]]]:
    """(source ids, target ids) pairs, truncated, each with <s> … </s>. Derived in notebook 06, section 5."""
    src = tokenizer(list(sources), truncation=True, max_length=max_source)["input_ids"]
    tgt = tokenizer(list(targets), truncation=True, max_length=max_target)["input_ids"]
    return list(zip(src, tgt))


def collate(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int) -> dict[str, Any]:
    """A padded batch: input_ids, attention_mask and labels (padding in labels is -100, ignored).

    Derived in notebook 06, section 6.
    """
    import torch

    width = max(len(s) for s, _ in pairs)
    height = max(len(t) for _, t in pairs)
    input_ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), height), -100, dtype=torch.long)
    for row, (source, target) in enumerate(pairs):
        input_ids[row, :len(source)] = torch.tensor(source)
        labels[row, :len(target)] = torch.tensor(target)
    return {"input_ids": input_ids, "attention_mask": (input_ids != pad_id).long(), "labels": labels}


def train(model: Any, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, steps: int = 300,
          batch_size: int = 16, lr: float = 1e-3, warmup: int = 30, seed: int = 0,
          weight_decay: float = 0.01, log: Callable[[int, float], None] | None = None) -> list[float]:
    """Train with AdamW and a linear warm-up then linear decay; returns the loss of every step.

    Derived in notebook 06, section 7.
    """
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    history: list[float] = []
    for step in range(steps):
        picked = rng.choice(len(pairs), size=batch_size, replace=False)
        batch = collate([pairs[i] for i in picked], pad_id)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        history.append(loss.item())
        if log is not None:
            log(step, history[-1])
    model.eval()
    return history


def smooth(values: Sequence[float], window: int = 20) -> list[float]:
    """The running mean of values over the last window entries. Derived in notebook 06, section 7."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


# --- generation ------------------------------------------------------------------------------

def generate(model: Any, tokenizer: Any, texts: Sequence[str], max_source: int = 128,
             max_new_tokens: int = 24, num_beams: int = 1, batch_size: int = 32,
             no_repeat_ngram_size: int = 3) -> list[str]:
    """Decoded outputs for texts (greedy when num_beams is 1), never repeating an n-gram.

    Derived in notebook 06, section 8.
    """
    import torch

    outputs: list[str] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True,
                          truncation=True, max_length=max_source).to(model.device)
        with torch.inference_mode():
            ids = model.generate(**batch, max_new_tokens=max_new_tokens, num_beams=num_beams,
                                 do_sample=False, no_repeat_ngram_size=no_repeat_ngram_size)
        outputs += [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    return outputs

