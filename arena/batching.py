"""Continuous batching for a local model: answers that several threads ask for at the same
time are written together, one forward pass per token for all of them, and an answer asked for
while others are being written joins them at their next token.

On a CPU one forward pass over eight sequences costs little more than over one (the weights are
read once), so a worker that writes both sides of several battles together gives each person
their first words within a second or two instead of after everyone ahead of them in line.

Each sequence keeps its own sampling settings (temperature, top-p, seed, stop strings, token
cap). The batch is left-padded: every sequence's cache ends at the same column, an attention
mask hides the padding and position ids count only real tokens, so a sequence's answer does not
depend on who else is in the batch (up to floating-point rounding).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

import torch

from arena.backends import GenerationSettings, cut_at_stop

logger = logging.getLogger(__name__)

# A loop thread with nothing to do for this long ends; the next request starts another.
_IDLE_EXIT_S = 30.0


class BatchRequest:
    """One answer being written: the batch loop appends to `tokens` and sets `grew` after each
    token; `done` is set at the end (with `finish_reason`, or `error` when the model failed)."""

    def __init__(self, prompt_ids: list[int], settings: GenerationSettings):
        self.prompt_ids = prompt_ids
        self.settings = settings
        self.tokens: list[int] = []
        # The model's raw logits at each step (for log-probabilities), only when asked for.
        self.logits: list[torch.Tensor] = []
        self.finish_reason = ""
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.grew = threading.Event()
        self.cancelled = False  # set by the asker: the loop ends the answer at its next token
        self.generator = None
        if settings.seed is not None:
            self.generator = torch.Generator().manual_seed(settings.seed)


class Batcher:
    """Owns one model's decode loop, in a daemon thread started on the first request.

    `submit` queues a request and returns at once; the caller waits on `request.done` and may
    read `request.tokens` meanwhile (a list only ever appended to)."""

    def __init__(self, model, eos_ids: set[int], decode, max_batch: int = 8):
        self.model, self.eos_ids, self.decode = model, eos_ids, decode
        self.max_batch = max(1, max_batch)
        self._waiting: deque[BatchRequest] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._reset()

    def _reset(self) -> None:
        self.active: list[BatchRequest] = []
        self._cache: list[tuple[torch.Tensor, torch.Tensor]] = []  # per layer: (B,H,L,D) x2
        self._mask = torch.zeros(0, 0, dtype=torch.long)  # (B, L)
        self._next = torch.zeros(0, dtype=torch.long)  # (B,) sampled, not yet in the cache

    def submit(self, request: BatchRequest) -> BatchRequest:
        with self._wake:
            self._waiting.append(request)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True, name="batcher")
                self._thread.start()
            self._wake.notify()
        return request

    def _loop(self) -> None:
        while True:
            with self._wake:
                if not self._waiting and not self.active:
                    self._wake.wait(timeout=_IDLE_EXIT_S)
                if not self._waiting and not self.active:
                    self._thread = None  # idle: a model dropped from its cache can be freed
                    return
                room = self.max_batch - len(self.active)
                joining = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
            try:
                with torch.inference_mode():
                    if joining:
                        self._admit(joining)
                    if self.active:
                        self._step()
            except Exception as exc:  # the model failed: every answer in flight fails with it
                logger.exception("Batched generation failed")
                for request in {*self.active, *joining}:
                    self._end(request, "", error=exc)
                self._reset()

    def _admit(self, joining: list[BatchRequest]) -> None:
        """Read the newcomers' prompts in one forward pass, sample their first tokens and merge
        their cache into the batch's."""
        length = max(len(r.prompt_ids) for r in joining)
        ids = torch.zeros(len(joining), length, dtype=torch.long)
        mask = torch.zeros(len(joining), length, dtype=torch.long)
        for row, request in enumerate(joining):
            n = len(request.prompt_ids)
            ids[row, length - n :] = torch.tensor(request.prompt_ids)
            mask[row, length - n :] = 1
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=_positions(mask), use_cache=True
        )
        cache = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        self._merge(cache, mask)
        self.active.extend(joining)
        start = len(self.active) - len(joining)
        self._next = torch.cat([self._next, torch.zeros(len(joining), dtype=torch.long)])
        self._take(out.logits[:, -1, :], rows=range(start, len(self.active)))

    def _merge(self, cache: list[tuple], mask: torch.Tensor) -> None:
        if not self.active:
            self._cache, self._mask = cache, mask
            return
        width = max(self._mask.shape[1], mask.shape[1])
        self._cache = [
            (
                torch.cat([_pad_left(k0, width), _pad_left(k1, width)]),
                torch.cat([_pad_left(v0, width), _pad_left(v1, width)]),
            )
            for (k0, v0), (k1, v1) in zip(self._cache, cache, strict=True)
        ]
        self._mask = torch.cat([_pad_mask(self._mask, width), _pad_mask(mask, width)])

    def _step(self) -> None:
        """One token for every sequence in the batch."""
        from transformers import DynamicCache

        self._mask = torch.cat(
            [self._mask, torch.ones(len(self.active), 1, dtype=torch.long)], dim=1
        )
        out = self.model(
            input_ids=self._next.unsqueeze(1),
            attention_mask=self._mask,
            position_ids=_positions(self._mask)[:, -1:],
            past_key_values=DynamicCache(self._cache),
            use_cache=True,
        )
        self._cache = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        self._take(out.logits[:, -1, :], rows=range(len(self.active)))

    def _take(self, logits: torch.Tensor, rows: range) -> None:
        """Sample the next token of each row in `rows` from its logits (one row of `logits`
        each, in order), then let finished answers leave the batch."""
        finished = []
        for offset, row in enumerate(rows):
            request = self.active[row]
            scores = logits[offset].float()
            token = _sample(scores, request.settings, request.generator)
            if request.settings.top_logprobs is not None:
                request.logits.append(scores.unsqueeze(0))
            request.tokens.append(token)
            request.grew.set()
            self._next[row] = token
            reason = self._finished(request, token)
            if reason:
                finished.append((row, reason))
        if finished:
            self._drop(finished)

    def _finished(self, request: BatchRequest, token: int) -> str:
        settings = request.settings
        if request.cancelled:
            return "cancelled"
        if token in self.eos_ids:
            return "stop"
        stop = tuple(s for s in settings.stop if s)
        if stop and cut_at_stop(self.decode(request.tokens), stop)[1]:
            return "stop"
        if len(request.tokens) >= settings.max_new_tokens:
            return "length"
        return ""

    def _drop(self, finished: list[tuple[int, str]]) -> None:
        gone = {row for row, _ in finished}
        for row, reason in finished:
            self._end(self.active[row], reason)
        keep = torch.tensor([row for row in range(len(self.active)) if row not in gone])
        self.active = [r for row, r in enumerate(self.active) if row not in gone]
        if not self.active:
            self._reset()
            return
        self._mask, self._next = self._mask[keep], self._next[keep]
        # Columns that are padding for every sequence left are dropped.
        first = int(self._mask.any(dim=0).nonzero()[0])
        self._mask = self._mask[:, first:]
        self._cache = [(k[keep, :, first:], v[keep, :, first:]) for k, v in self._cache]

    @staticmethod
    def _end(request: BatchRequest, reason: str, error: BaseException | None = None) -> None:
        request.finish_reason, request.error = reason, error
        request.done.set()
        request.grew.set()


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Each token's position among its sequence's real tokens (padding gets 0)."""
    return (mask.cumsum(dim=1) - 1).clamp(min=0)


def _pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """A (B, H, L, D) cache tensor with zero columns in front, to length `width`."""
    missing = width - tensor.shape[2]
    if not missing:
        return tensor
    shape = (tensor.shape[0], tensor.shape[1], missing, tensor.shape[3])
    return torch.cat([tensor.new_zeros(shape), tensor], dim=2)


def _pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    return torch.cat([mask.new_zeros(mask.shape[0], missing), mask], dim=1) if missing else mask


def _sample(scores: torch.Tensor, settings: GenerationSettings, generator) -> int:
    """Greedy at temperature 0; otherwise temperature, then nucleus (top-p) sampling."""
    if settings.temperature <= 0:
        return int(scores.argmax())
    probs = torch.softmax(scores / settings.temperature, dim=-1)
    if settings.top_p < 1.0:
        ordered, order = probs.sort(descending=True)
        # Keep the smallest set of tokens whose mass reaches top_p (at least one token).
        outside = ordered.cumsum(0) - ordered >= settings.top_p
        ordered[outside] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, ordered)
    return int(torch.multinomial(probs, 1, generator=generator))
