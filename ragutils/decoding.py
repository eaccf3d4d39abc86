"""Decoding from scratch: a language model as a next-token distribution, and ways to pick from it.

Notebook 05 derives each method by hand and checks it token for token against
``transformers``' ``model.generate``. What is here:

- ``next_token_logits``: one forward step with a key-value cache.
- The filters, pure functions on a ``(batch, vocab)`` tensor of logits, with the
  exact semantics of ``transformers``' logits processors: ``apply_temperature``
  (``TemperatureLogitsWarper``), ``top_k_filter`` (``TopKLogitsWarper``),
  ``top_p_filter`` (``TopPLogitsWarper``) and ``apply_repetition_penalty``
  (``RepetitionPenaltyLogitsProcessor``); ``process_logits`` applies them in
  ``generate``'s order.
- The decoders: ``greedy_search``, ``beam_search`` (length penalty, early stopping,
  the cache reordered along the surviving beams) and ``sample`` (temperature, top-k,
  top-p, repetition penalty, a seeded ``torch.Generator``).
- ``plot_beam_tree``: the beams explored at each step, as a picture.

Every decoder takes one prompt (batch size 1) and returns the prompt followed by the
new tokens, as a ``(1, length)`` tensor, just as ``generate`` does; beam search runs
its beams as the batch. Stopping: a decoder stops after ``max_new_tokens`` tokens or
right after an end-of-sequence token (``eos_token_id``; ``None`` never stops early).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import CourseError

FILTERED = -float("inf")  # the value a filter gives the tokens it removes, as transformers does
NEG_INF_SCORE = -1.0e9  # beam search's "impossible" score (transformers' constant, kept for identical ties)


# --- checks: one clear line for a mistake the learner can fix ---------------------------

def _as_prompt(input_ids: Any) -> torch.Tensor:
    """The prompt as a (1, length) LongTensor; a list of ids or a 1-D tensor is accepted."""
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
    if ids.dim() != 2 or ids.shape[0] != 1:
        raise CourseError(f"decoders take one prompt (batch size 1); got input_ids of shape {tuple(ids.shape)}")
    if ids.shape[1] == 0:
        raise CourseError("the prompt is empty: give at least one token id")
    return ids


def _check_max_new_tokens(max_new_tokens: int) -> None:
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise CourseError(f"max_new_tokens must be a whole number ≥ 1, got {max_new_tokens!r}")


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise CourseError(f"temperature must be > 0, got {temperature!r} (for temperature 0, use greedy_search)")


def _check_top_p(top_p: float) -> None:
    if not 0 < top_p <= 1:
        raise CourseError(f"top_p must be in (0, 1], got {top_p!r}")


def _check_top_k(top_k: int) -> None:
    if not isinstance(top_k, int) or top_k < 1:
        raise CourseError(f"top_k must be a whole number ≥ 1, got {top_k!r}")


def _check_repetition_penalty(penalty: float) -> None:
    if not penalty > 0:
        raise CourseError(f"repetition_penalty must be > 0 (1.0 means no penalty), got {penalty!r}")


def _eos_ids(eos_token_id: int | Sequence[int] | None) -> list[int]:
    """The end-of-sequence ids as a list (empty: never stop early)."""
    if eos_token_id is None:
        return []
    if isinstance(eos_token_id, int):
        return [eos_token_id]
    return [int(token) for token in eos_token_id]


# --- one step of the model --------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def forward_options(model_class: type) -> tuple[str, bool]:
    """The forward() argument that takes the key-value cache (`cache` in recent transformers,
    `past_key_values` before), and whether forward() accepts `logits_to_keep`.

    Used in notebook 05.
    """
    parameters = inspect.signature(model_class.forward).parameters
    return ("cache" if "cache" in parameters else "past_key_values"), "logits_to_keep" in parameters


def next_token_logits(model: Any, input_ids: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
    """Logits of the next token after each row of input_ids, and the updated key-value cache.

    Without a cache, ``input_ids`` is the whole sequence; with one, only the tokens the
    cache has not seen yet (usually the last one).

    Derived in notebook 05, section 1.
    """
    keyword, has_logits_to_keep = forward_options(type(model))
    options = {keyword: cache, "use_cache": True}
    if has_logits_to_keep:
        options["logits_to_keep"] = 1  # the lm_head only for the last position, as generate does
    with torch.inference_mode():
        outputs = model(input_ids=input_ids, **options)
    new_cache = getattr(outputs, "cache", None)
    if new_cache is None:
        new_cache = outputs.past_key_values
    # A copy made outside inference mode: an ordinary tensor that the caller may change in place.
    return outputs.logits[:, -1, :].to(dtype=torch.float32, copy=True), new_cache


# --- the filters: pure functions on logits ----------------------------------------------

def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits divided by the temperature: below 1 sharpens the distribution, above 1 flattens it.

    Derived in notebook 05, section 4.
    """
    _check_temperature(temperature)
    return logits / temperature


def top_k_filter(logits: torch.Tensor, top_k: int, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Logits with every token below the k-th largest set to -inf (ties with the k-th are kept).

    Derived in notebook 05, section 4.
    """
    _check_top_k(top_k)
    k = min(max(top_k, min_tokens_to_keep), logits.shape[-1])
    kth_largest = torch.topk(logits, k).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, FILTERED)


def top_p_filter(logits: torch.Tensor, top_p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Logits with -inf outside the smallest set of most likely tokens whose probability reaches top_p.

    Derived in notebook 05, section 4.
    """
    _check_top_p(top_p)
    # Sort ascending and drop from the unlikely end while the mass dropped stays ≤ 1 - top_p.
    sorted_logits, order = torch.sort(logits, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative <= (1 - top_p)
    drop_sorted[..., -min_tokens_to_keep:] = False  # the most likely tokens always stay
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, FILTERED)


def apply_repetition_penalty(logits: torch.Tensor, input_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """Logits of every token already in input_ids made less likely: negative ones × penalty, others ÷ penalty.

    Derived in notebook 05, section 5.
    """
    _check_repetition_penalty(penalty)
    ids = input_ids.reshape(logits.shape[0], -1) if logits.dim() == 2 else input_ids.reshape(1, -1)
    scores = logits.reshape(ids.shape[0], -1)
    seen = torch.gather(scores, 1, ids)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)  # once per token, however often it occurs
    return scores.scatter(1, ids, seen).reshape(logits.shape)


def process_logits(logits: torch.Tensor, input_ids: torch.Tensor, temperature: float = 1.0,
                   top_k: int | None = None, top_p: float = 1.0, repetition_penalty: float = 1.0,
                   min_tokens_to_keep: int = 1) -> torch.Tensor:
    """The logits after repetition penalty, temperature, top-k and top-p, in the order `generate` applies them.

    Used in notebook 05.
    """
    if repetition_penalty != 1.0:
        logits = apply_repetition_penalty(logits, input_ids, repetition_penalty)
    if temperature != 1.0:
        logits = apply_temperature(logits, temperature)
    if top_k:  # None or 0: no top-k
        logits = top_k_filter(logits, top_k, min_tokens_to_keep)
    if top_p < 1.0:
        logits = top_p_filter(logits, top_p, min_tokens_to_keep)
    return logits


# --- greedy search and sampling ----------------------------------------------------------

def _decode_one_token_at_a_time(model: Any, input_ids: Any, max_new_tokens: int,
                                eos_token_id: int | Sequence[int] | None, pick) -> torch.Tensor:
    """The shared loop of greedy search and sampling: forward, pick a token, append, stop at EOS."""
    ids = _as_prompt(input_ids)
    _check_max_new_tokens(max_new_tokens)
    ids = ids.to(model.device)
    stop_ids = set(_eos_ids(eos_token_id))
    new_tokens: list[torch.Tensor] = []
    logits, cache = next_token_logits(model, ids)  # the prompt, once: it fills the cache
    for step in range(max_new_tokens):
        token = pick(logits, ids if not new_tokens else torch.cat([ids, *new_tokens], dim=1))
        new_tokens.append(token.view(1, 1))
        if int(token) in stop_ids or step == max_new_tokens - 1:
            break
        logits, cache = next_token_logits(model, new_tokens[-1], cache)  # only the new token
    return torch.cat([ids, *new_tokens], dim=1)


def greedy_search(model: Any, input_ids: Any, max_new_tokens: int,
                  eos_token_id: int | Sequence[int] | None = None,
                  repetition_penalty: float = 1.0) -> torch.Tensor:
    """The prompt followed by the most likely token at every step (the arg-max), as a (1, length) tensor.

    Derived in notebook 05, section 2.
    """
    _check_repetition_penalty(repetition_penalty)

    def pick(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        if repetition_penalty != 1.0:
            logits = apply_repetition_penalty(logits, ids, repetition_penalty)
        return torch.argmax(logits, dim=-1)

    return _decode_one_token_at_a_time(model, input_ids, max_new_tokens, eos_token_id, pick)


def sample(model: Any, input_ids: Any, max_new_tokens: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float = 1.0, repetition_penalty: float = 1.0,
           eos_token_id: int | Sequence[int] | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """The prompt followed by tokens drawn from the filtered next-token distribution, as a (1, length) tensor.

    Token for token what ``generate(do_sample=True, top_k=...)`` draws after ``torch.manual_seed(s)``
    when ``generator`` is ``torch.Generator().manual_seed(s)`` (None: the global generator).

    Derived in notebook 05, section 4.
    """
    # One torch.multinomial draw per step, on the softmax of the logits after repetition
    # penalty, temperature, top-k and top-p: the same random numbers on the same probabilities.
    _check_temperature(temperature)
    _check_top_p(top_p)
    _check_repetition_penalty(repetition_penalty)
    if top_k is not None and top_k != 0:
        _check_top_k(top_k)

    def pick(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        scores = process_logits(logits, ids, temperature, top_k, top_p, repetition_penalty)
        probabilities = torch.softmax(scores, dim=-1)
        return torch.multinomial(probabilities, num_samples=1, generator=generator).squeeze(1)

    return _decode_one_token_at_a_time(model, input_ids, max_new_tokens, eos_token_id, pick)


# --- beam search -------------------------------------------------------------------------

@dataclass
class BeamStep:
    """What beam search saw at one step: the candidates it ranked, and what became of each.

    ``parents[i]`` is the running beam (index into the previous step's ``beams``) that
    candidate ``i`` extends with ``tokens[i]``; ``scores[i]`` is its cumulative log-probability;
    ``status[i]`` is "kept" (a running beam of the next step), "finished" (ended with EOS,
    or hit the length limit, and entered the finished hypotheses), or "dropped".
    ``beams`` lists, for the next step, which candidate each running beam is.

    Used in notebook 05.
    """

    step: int
    parents: list[int]
    tokens: list[int]
    scores: list[float]
    status: list[str]
    beams: list[int] = field(default_factory=list)


def _finished_length_score(scores: torch.Tensor, generated_length: int, length_penalty: float) -> torch.Tensor:
    """A finished hypothesis' score: its log-probability / (generated length ** length_penalty)."""
    return scores / (generated_length ** length_penalty)


def beam_search(model: Any, input_ids: Any, num_beams: int, max_new_tokens: int,
                length_penalty: float = 1.0, early_stopping: bool | str = False,
                eos_token_id: int | Sequence[int] | None = None,
                trace: list[BeamStep] | None = None) -> torch.Tensor:
    """The prompt followed by the best finished hypothesis of beam search, as a (1, length) tensor.

    The same search as ``generate(num_beams=..., do_sample=False)``; pass a list as ``trace``
    to receive one ``BeamStep`` per step (for ``plot_beam_tree``).

    Derived in notebook 05, section 3.
    """
    # The rules of transformers 5.x (GenerationMixin._beam_search), for one prompt:
    # - each step ranks the K = max(2, 1 + number of EOS ids) * num_beams best continuations
    #   of all running beams by cumulative log-probability;
    # - among the first num_beams of those, the ones that end (EOS, or the length limit)
    #   become finished hypotheses scored sum of log-probs / generated_length ** length_penalty
    #   (the generated length counts the new tokens, EOS included, not the prompt); the best
    #   num_beams finished hypotheses are kept;
    # - the best num_beams continuations that did not end run on; the key-value cache is
    #   reordered (index_select on the batch) to follow them;
    # - it stops when every continuation ends, or when the best running beam can no longer beat
    #   the worst finished hypothesis: with early_stopping=False that beam is judged at its
    #   current length, with "never" (and length_penalty > 0) at the maximum length; with
    #   True it stops as soon as num_beams hypotheses have finished.
    # The -1e9 "impossible" scores are added exactly where transformers adds them, so that
    # ties and float rounding come out the same.
    ids = _as_prompt(input_ids)
    _check_max_new_tokens(max_new_tokens)
    if not isinstance(num_beams, int) or num_beams < 1:
        raise CourseError(f"num_beams must be a whole number ≥ 1, got {num_beams!r}")
    if early_stopping not in (True, False, "never"):
        raise CourseError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    ids = ids.to(model.device)
    stop_ids = torch.tensor(_eos_ids(eos_token_id), dtype=torch.long, device=ids.device)
    prompt_length = ids.shape[1]
    max_length = prompt_length + max_new_tokens
    candidates = max(2, 1 + len(stop_ids)) * num_beams
    first_beams = torch.arange(candidates, device=ids.device) < num_beams

    # Running beams: sequences and cumulative log-probs. Only beam 0 is real at the start
    # (the others score -1e9), so the first step does not pick the same token num_beams times.
    running = ids.repeat(num_beams, 1)
    running_scores = torch.full((num_beams,), NEG_INF_SCORE, device=ids.device)
    running_scores[0] = 0.0
    # Finished hypotheses: the best num_beams so far, with their (length-penalised) scores.
    finished: list[torch.Tensor] = [ids[0]] * num_beams
    finished_scores = torch.full((num_beams,), NEG_INF_SCORE, device=ids.device)
    is_finished = torch.zeros(num_beams, dtype=torch.bool, device=ids.device)

    # The prompt goes in once per beam, as generate does (a batch of identical rows), so that
    # every later step sees bit-for-bit the same numbers as generate's.
    logits, cache = next_token_logits(model, running)
    for step in range(max_new_tokens):
        current_length = prompt_length + step
        vocab_size = logits.shape[-1]
        log_probs = torch.log_softmax(logits, dim=-1) + running_scores[:, None]
        top_scores, top_indices = torch.topk(log_probs.reshape(-1), k=candidates)
        parents = top_indices // vocab_size
        tokens = top_indices % vocab_size
        sequences = torch.cat([running[parents], tokens[:, None]], dim=1)
        ends = torch.isin(tokens, stop_ids) | (current_length + 1 >= max_length)

        # The num_beams best continuations that did not end keep running.
        kept = torch.topk(top_scores + ends.float() * NEG_INF_SCORE, k=num_beams).indices
        # The ones among the first num_beams candidates that ended join the finished hypotheses.
        just_finished = ends & first_beams
        scores = _finished_length_score(top_scores, current_length + 1 - prompt_length, length_penalty)
        if early_stopping is True and bool(is_finished.all()):
            scores = scores + NEG_INF_SCORE  # early_stopping=True: the finished set is closed
        scores = scores + (~just_finished).float() * NEG_INF_SCORE
        merged_scores = torch.cat([finished_scores, scores])
        best = torch.topk(merged_scores, k=num_beams).indices
        merged = finished + list(sequences)
        finished = [merged[i] for i in best.tolist()]
        finished_scores = merged_scores[best]
        is_finished = torch.cat([is_finished, just_finished])[best]

        if trace is not None:
            status = ["finished" if just_finished[i] and (i + num_beams) in best else "dropped"
                      for i in range(candidates)]
            for i in kept.tolist():
                if not ends[i]:  # at the length limit every candidate ends: none keeps running
                    status[i] = "kept"
            trace.append(BeamStep(step, parents.tolist(), tokens.tolist(),
                                  [round(float(s), 4) for s in top_scores], status, kept.tolist()))

        running = sequences[kept]
        running_scores = (top_scores + ends.float() * NEG_INF_SCORE)[kept]
        # Is there still a reason to go on?
        generated = current_length + 1 - prompt_length
        if early_stopping == "never" and length_penalty > 0.0:
            best_possible = running_scores[0] / ((max_length - prompt_length) ** length_penalty)
        else:
            best_possible = running_scores[0] / (generated ** length_penalty)
        worst_finished = torch.where(is_finished, finished_scores.min(), NEG_INF_SCORE)
        improvement_possible = bool((best_possible > worst_finished).any())
        all_closed = early_stopping is True and bool(is_finished.all())
        if not improvement_possible or all_closed or bool(ends.all()):
            break
        # The cache follows the surviving beams: row i now holds the keys and values of its parent.
        _reorder_cache(cache, parents[kept])
        logits, cache = next_token_logits(model, running[:, -1:], cache)
    return finished[0].unsqueeze(0)


def _reorder_cache(cache: Any, beam_indices: torch.Tensor) -> None:
    """Reorder a key-value cache along the batch, in place (index_select on every layer)."""
    if hasattr(cache, "reorder_cache"):
        cache.reorder_cache(beam_indices)
    else:  # pragma: no cover - very old transformers with tuple caches
        raise CourseError("this transformers version's cache cannot be reordered; upgrade transformers")


# --- the picture -------------------------------------------------------------------------

def plot_beam_tree(trace: Sequence[BeamStep], tokenizer: Any, ax: Any = None, max_steps: int | None = None):
    """Draw the candidates of a beam search: one column per step, a node per candidate (token, cumulative log-prob).

    Derived in notebook 05, section 3.
    """
    import matplotlib.pyplot as plt

    steps = list(trace)[:max_steps] if max_steps else list(trace)
    if not steps:
        raise CourseError("the trace is empty: pass trace=[] to beam_search and plot after it ran")
    n = len(steps[0].tokens)
    if ax is None:
        _, ax = plt.subplots(figsize=(2.6 * len(steps) + 2, 0.7 * n + 1))
    colours = {"kept": "tab:blue", "finished": "tab:green", "dropped": "silver"}
    ys = [(n - 1) / 2 - i for i in range(n)]  # candidates top to bottom, best first
    ax.scatter([0], [0], s=60, color="black", zorder=3)
    ax.annotate("prompt", (0, 0), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=9)
    parent_y = {0: 0.0}  # running beam -> the height of its node in the previous column
    for column, step in enumerate(steps, start=1):
        for y, parent, token, score, status in zip(ys, step.parents, step.tokens, step.scores, step.status):
            if parent not in parent_y:
                continue
            colour = colours[status]
            ax.plot([column - 1, column], [parent_y[parent], y], color=colour,
                    linewidth=1.8 if status != "dropped" else 0.7, zorder=2 if status != "dropped" else 1)
            ax.scatter([column], [y], s=36, color=colour, zorder=3)
            ax.annotate(f"{tokenizer.decode([token])!r} {score:.2f}", (column, y), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=8, color="black" if status != "dropped" else "grey")
        parent_y = {beam: ys[candidate] for beam, candidate in enumerate(step.beams)}
    ax.set_xticks(range(len(steps) + 1), ["prompt"] + [f"step {step.step + 1}" for step in steps])
    ax.set_yticks([])
    ax.set_xlim(-0.4, len(steps) + 0.5)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.7)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    handles = [plt.Line2D([], [], color=colour, marker="o", label=label) for label, colour in colours.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return ax
