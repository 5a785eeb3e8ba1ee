"""Examples, length-bucketed batches and padding for CTC training.

Batches are padded with the fbank value of silence (``log(FLT_EPSILON)``) up to a whole
number of chunks, exactly as :class:`edgetune._runner.StreamingModel` pads the last
chunk of an utterance at inference; the CTC input length of each example covers its own
padded chunks, so training sees what streaming inference produces.
"""

from __future__ import annotations

from collections.abc import Sequence

import math
from dataclasses import dataclass
from typing import Any

import torch

from edgetune.errors import DataError


@dataclass
class Example:
    """One utterance ready for training: log-mel features [T, n_mels], label ids, text, group."""

    feats: torch.Tensor
    ids: list[int]
    text: str
    group: str = ""

    @property
    def frames(self) -> int:
        return int(self.feats.shape[0])


def make_examples(utts: Sequence[Any], feats: Sequence[Any]) -> list[Example]:
    """Training examples from utterances (their normalised transcripts) and their features."""
    from edgetune.data import encode, normalize_text

    out = []
    for u, f in zip(utts, feats):
        text = normalize_text(u.text)
        if not text:
            raise DataError(f"utterance {u.audio_filepath} has an empty transcript after normalisation; "
                            f"fix or remove it in the manifest")
        out.append(Example(feats=f, ids=encode(text), text=text, group=u.group or ""))
    return out


@dataclass
class Batch:
    feats: torch.Tensor          # [B, T, n_mels], T a multiple of chunk_frames
    input_lengths: torch.Tensor  # [B] output frames covering each example's padded chunks
    targets: torch.Tensor        # [sum(target_lengths)] concatenated label ids
    target_lengths: torch.Tensor  # [B]
    texts: list[str]

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.feats.to(device, non_blocking=True), self.input_lengths, self.targets,
                     self.target_lengths, self.texts)


def bucket_batches(lengths: list[int], batch_size: int, generator: torch.Generator | None = None,
                   jitter: float = 0.1) -> list[list[int]]:
    """Indices grouped into batches of similar length, batch order shuffled.

    With a generator, lengths are jittered by up to ``jitter`` before sorting so batch
    composition changes between epochs; without one the order is deterministic (evaluation).
    """
    n = len(lengths)
    if generator is not None:
        noise = torch.rand(n, generator=generator).tolist()
        keys = [(lengths[i] * (1.0 + jitter * noise[i]), i) for i in range(n)]
    else:
        keys = [(float(lengths[i]), i) for i in range(n)]
    order = [i for _, i in sorted(keys)]
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if generator is not None:
        perm = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[i] for i in perm]
    return batches


def resident(examples: Sequence[Example], device: torch.device) -> list[Example]:
    """The same examples with their features moved to ``device`` once (not once per batch)."""
    return [Example(e.feats.to(device, non_blocking=True), e.ids, e.text, e.group) for e in examples]


def collate(examples: list[Example], chunk_frames: int, subsampling: int, pad_value: float) -> Batch:
    """Pad features to a whole number of chunks (silence) and concatenate targets."""
    chunks = [max(1, math.ceil(e.frames / chunk_frames)) for e in examples]
    t_max = max(chunks) * chunk_frames
    n_mels = examples[0].feats.shape[1]
    feats = torch.full((len(examples), t_max, n_mels), pad_value, dtype=torch.float32,
                       device=examples[0].feats.device)  # on the GPU when the data lives there
    for i, e in enumerate(examples):
        feats[i, :e.frames] = e.feats
    input_lengths = torch.tensor([c * chunk_frames // subsampling for c in chunks], dtype=torch.long)
    targets = torch.tensor([i for e in examples for i in e.ids], dtype=torch.long)
    target_lengths = torch.tensor([len(e.ids) for e in examples], dtype=torch.long)
    return Batch(feats, input_lengths, targets, target_lengths, [e.text for e in examples])


def collate_gathered(examples: list[Example], chunk_frames: int, subsampling: int, pad_value: float) -> Batch:
    """:func:`collate`'s batch (the same values) built with one gather instead of one copy per utterance.

    For features resident on the GPU: the row index is built on the host and copied from pinned
    memory without waiting; targets are pinned too, so the step copies them without a sync.
    """
    device = examples[0].feats.device
    cuda = device.type == "cuda"
    frames = torch.tensor([e.frames for e in examples], dtype=torch.long)
    chunks = torch.clamp((frames + chunk_frames - 1) // chunk_frames, min=1)
    t_max = int(chunks.max()) * chunk_frames
    n_mels = examples[0].feats.shape[1]
    starts = torch.arange(len(examples), dtype=torch.long) * t_max - (torch.cumsum(frames, 0) - frames)
    rows = torch.repeat_interleave(starts, frames) + torch.arange(int(frames.sum()), dtype=torch.long)
    if cuda:
        rows = rows.pin_memory().to(device, non_blocking=True)
    feats = torch.full((len(examples) * t_max, n_mels), pad_value, dtype=torch.float32, device=device)
    feats.index_copy_(0, rows, torch.cat([e.feats for e in examples]).float())
    input_lengths = chunks * chunk_frames // subsampling
    targets = torch.tensor([i for e in examples for i in e.ids], dtype=torch.long)
    target_lengths = torch.tensor([len(e.ids) for e in examples], dtype=torch.long)
    if cuda:
        targets, input_lengths = targets.pin_memory(), input_lengths.pin_memory()
    return Batch(feats.view(len(examples), t_max, n_mels), input_lengths, targets, target_lengths,
                 [e.text for e in examples])
