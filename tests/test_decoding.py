"""ragutils.decoding: filters against transformers' logits processors, decoders against generate()."""

import pytest
import torch
from transformers import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
                          TopPLogitsWarper)

from ragutils import data, decoding, models
from ragutils.errors import CourseError

N_PROMPTS = 20
NEW_TOKENS = 16  # enough for the beams to diverge and for some answers to end with EOS


# --- the filters: pure functions, checked against transformers' processors on random logits -------

def _random_logits(seed: int, ties: bool) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 40, generator=generator) * 3
    if ties:
        logits = torch.round(logits)  # many exact ties, at the k-th place too
    ids = torch.randint(0, 40, (3, 9), generator=generator)
    return logits, ids


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_top_k_filter_is_topk_logits_warper(ties):
    for seed in range(20):
        logits, ids = _random_logits(seed, ties)
        for k in (1, 2, 7, 39, 40, 100):
            for keep in (1, 3):
                expected = TopKLogitsWarper(k, min_tokens_to_keep=keep)(ids, logits)
                assert torch.equal(decoding.top_k_filter(logits, k, keep), expected), (seed, k, keep)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_top_p_filter_is_top_p_logits_warper(ties):
    for seed in range(20):
        logits, ids = _random_logits(seed, ties)
        for p in (0.01, 0.3, 0.5, 0.9, 0.999, 1.0):
            for keep in (1, 3):
                expected = TopPLogitsWarper(p, min_tokens_to_keep=keep)(ids, logits)
                assert torch.equal(decoding.top_p_filter(logits, p, keep), expected), (seed, p, keep)


def test_filters_set_removed_tokens_to_minus_infinity():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert decoding.top_k_filter(logits, 2).tolist() == [[3.0, 2.0, -float("inf"), -float("inf")]]
    assert decoding.top_k_filter(torch.tensor([[1.0, 2.0, 2.0, 0.0]]), 1).tolist() == \
        [[-float("inf"), 2.0, 2.0, -float("inf")]]  # a tie with the k-th token is kept
    assert torch.isinf(decoding.top_p_filter(logits, 0.5)).tolist() == [[False, True, True, True]]


def test_temperature_and_repetition_penalty_are_the_transformers_processors():
    for seed in range(10):
        logits, ids = _random_logits(seed, ties=False)
        for temperature in (0.3, 1.0, 2.5):
            assert torch.equal(decoding.apply_temperature(logits, temperature),
                               TemperatureLogitsWarper(temperature)(ids, logits))
        for penalty in (0.7, 1.0, 1.3):
            assert torch.equal(decoding.apply_repetition_penalty(logits, ids, penalty),
                               RepetitionPenaltyLogitsProcessor(penalty)(ids, logits.clone()))


def test_repetition_penalty_hits_each_seen_token_once():
    logits = torch.tensor([[2.0, -2.0, 1.0, 0.5]])
    ids = torch.tensor([[0, 1, 1, 1]])
    assert decoding.apply_repetition_penalty(logits, ids, 2.0).tolist() == [[1.0, -4.0, 1.0, 0.5]]


# --- errors: one clear line ---------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: decoding.apply_temperature(torch.zeros(1, 3), 0.0), "temperature must be > 0"),
    (lambda: decoding.apply_temperature(torch.zeros(1, 3), -1.0), "temperature must be > 0"),
    (lambda: decoding.top_p_filter(torch.zeros(1, 3), 0.0), r"top_p must be in \(0, 1\]"),
    (lambda: decoding.top_p_filter(torch.zeros(1, 3), 1.5), r"top_p must be in \(0, 1\]"),
    (lambda: decoding.top_k_filter(torch.zeros(1, 3), 0), "top_k must be a whole number"),
    (lambda: decoding.apply_repetition_penalty(torch.zeros(1, 3), torch.zeros(1, 1, dtype=torch.long), 0.0),
     "repetition_penalty must be > 0"),
])
def test_bad_filter_arguments_are_course_errors(call, message):
    with pytest.raises(CourseError, match=message):
        call()


def test_bad_decoder_arguments_are_course_errors_before_any_model_call():
    model = object()  # never reached: the checks come first
    with pytest.raises(CourseError, match="the prompt is empty"):
        decoding.greedy_search(model, [], 5)
    with pytest.raises(CourseError, match="batch size 1"):
        decoding.greedy_search(model, [[1, 2], [3, 4]], 5)
    with pytest.raises(CourseError, match="max_new_tokens must be"):
        decoding.greedy_search(model, [1, 2], 0)
    with pytest.raises(CourseError, match="num_beams must be"):
        decoding.beam_search(model, [1, 2], num_beams=0, max_new_tokens=5)
    with pytest.raises(CourseError, match="early_stopping must be"):
        decoding.beam_search(model, [1, 2], num_beams=2, max_new_tokens=5, early_stopping="soon")
    with pytest.raises(CourseError, match="temperature must be > 0"):
        decoding.sample(model, [1, 2], 5, temperature=0)
    with pytest.raises(CourseError, match=r"top_p must be in \(0, 1\]"):
        decoding.sample(model, [1, 2], 5, top_p=1.2)


# --- the decoders against generate() on the offline generator -----------------------------------

@pytest.fixture(scope="module")
def generator():
    model, tokenizer = models.load("generator", "offline")
    return model, tokenizer


@pytest.fixture(scope="module")
def prompts(generator):
    """Chat prompts for 20 varied dev questions (short ones, to keep the test quick)."""
    _, tokenizer = generator
    questions = [row["question"] for row in data.load_split("qa")["dev"] if len(row["question"]) <= 110]
    return [tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)["input_ids"]
            for question in questions[:N_PROMPTS]]


def reference(model, ids, **options):
    """generate() with every option spelled out, so that no default of the model or library slips in."""
    eos = model.generation_config.eos_token_id
    options = {"do_sample": False, "num_beams": 1, "max_new_tokens": NEW_TOKENS, "repetition_penalty": 1.0,
               "eos_token_id": eos, "pad_token_id": eos, **options}
    if options["do_sample"]:
        options = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, **options}
    if options["num_beams"] > 1:
        options = {"length_penalty": 1.0, "early_stopping": False, **options}
    with torch.inference_mode():
        return model.generate(ids, attention_mask=torch.ones_like(ids), **options)


def test_generator_has_no_hidden_sampling_defaults(generator):
    model, tokenizer = generator
    config = model.generation_config
    for name in ("temperature", "top_k", "top_p", "repetition_penalty", "length_penalty", "num_beams"):
        assert getattr(config, name) in (None, 1, 1.0), f"the model's generation_config sets {name}"
    assert config.eos_token_id == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_next_token_logits_with_a_cache_equal_a_full_forward(generator, prompts):
    model, _ = generator
    ids = prompts[0]
    logits, cache = decoding.next_token_logits(model, ids[:, :-1])
    with_cache, _ = decoding.next_token_logits(model, ids[:, -1:], cache)
    without_cache, _ = decoding.next_token_logits(model, ids)
    assert torch.allclose(with_cache, without_cache, atol=1e-4)
    assert logits.shape == (1, model.config.vocab_size)


def test_greedy_search_is_generate_on_20_prompts(generator, prompts):
    model, _ = generator
    eos = model.generation_config.eos_token_id
    assert len(prompts) == N_PROMPTS
    mismatched = [i for i, ids in enumerate(prompts)
                  if not torch.equal(decoding.greedy_search(model, ids, NEW_TOKENS, eos_token_id=eos),
                                     reference(model, ids))]
    assert not mismatched, f"greedy differs from generate on prompts {mismatched}"


def test_beam_search_is_generate_on_20_prompts(generator, prompts):
    model, _ = generator
    eos = model.generation_config.eos_token_id
    mismatched = [i for i, ids in enumerate(prompts)
                  if not torch.equal(decoding.beam_search(model, ids, num_beams=4, max_new_tokens=NEW_TOKENS,
                                                          eos_token_id=eos),
                                     reference(model, ids, num_beams=4))]
    assert not mismatched, f"beam search differs from generate on prompts {mismatched}"


@pytest.mark.parametrize("length_penalty, early_stopping", [(2.0, True), (0.5, "never"), (-1.0, False)])
def test_beam_search_length_penalty_and_early_stopping_are_generate(generator, prompts, length_penalty,
                                                                    early_stopping):
    model, _ = generator
    eos = model.generation_config.eos_token_id
    for ids in prompts[:3]:
        ours = decoding.beam_search(model, ids, num_beams=3, max_new_tokens=12, length_penalty=length_penalty,
                                    early_stopping=early_stopping, eos_token_id=eos)
        theirs = reference(model, ids, num_beams=3, max_new_tokens=12, length_penalty=length_penalty,
                           early_stopping=early_stopping)
        assert torch.equal(ours, theirs)


def test_one_beam_is_greedy_and_the_trace_follows_the_beams(generator, prompts):
    model, _ = generator
    ids = prompts[1]
    assert torch.equal(decoding.beam_search(model, ids, num_beams=1, max_new_tokens=8),
                       decoding.greedy_search(model, ids, 8))
    trace = []
    out = decoding.beam_search(model, ids, num_beams=3, max_new_tokens=5, trace=trace)
    assert len(trace) == 5 and out.shape[1] <= ids.shape[1] + 5
    assert set(trace[0].parents) == {0}  # at the start, only the prompt's own beam is real
    for step in trace:
        assert len(step.tokens) == 6 and step.scores == sorted(step.scores, reverse=True)
        assert len(step.beams) == 3
    assert all(step.status.count("kept") == 3 for step in trace[:-1])
    assert trace[-1].status.count("kept") == 0  # the length limit ends every beam
    assert trace[-1].status[:3] == ["finished"] * 3


def test_greedy_with_repetition_penalty_is_generate(generator, prompts):
    model, _ = generator
    eos = model.generation_config.eos_token_id
    for ids in prompts[:3]:
        ours = decoding.greedy_search(model, ids, NEW_TOKENS, eos_token_id=eos, repetition_penalty=1.3)
        assert torch.equal(ours, reference(model, ids, repetition_penalty=1.3))


@pytest.mark.parametrize("options", [
    {"temperature": 0.7, "top_p": 0.9},
    {"temperature": 1.3, "top_k": 20},
    {"temperature": 1.0, "top_k": 50, "top_p": 0.95, "repetition_penalty": 1.2},
], ids=["T0.7-p0.9", "T1.3-k20", "k50-p0.95-rep1.2"])
def test_seeded_sampling_is_generate_token_for_token(generator, prompts, options):
    model, _ = generator
    eos = model.generation_config.eos_token_id
    for seed, ids in enumerate(prompts[:3]):
        ours = decoding.sample(model, ids, NEW_TOKENS, eos_token_id=eos,
                               generator=torch.Generator().manual_seed(seed), **options)
        torch.manual_seed(seed)  # generate draws from the global generator
        theirs = reference(model, ids, do_sample=True, **options)
        assert torch.equal(ours, theirs), (seed, options)
