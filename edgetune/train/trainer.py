"""Training: CTC + AdamW with warmup/cosine, quantization-aware in its last phase, pruned in the middle.

One run, step by step (``total = epochs x batches``)::

    step 0 ........ prune_at x total ........ (1 - qat_fraction) x total ........ total
    float training  | structured pruning (one shot, or gradual steps) + fine-tuning
                                              | QAT: fake-quant on (integer / fp16 candidates)

CUDA when available (bf16 autocast), else CPU without autocast. Seeded: ``torch.manual_seed``
for initialisation and a private generator for batch order and SpecAugment, so a run on the
same machine and thread count is reproducible. After every epoch the dev set is decoded
(greedy CTC) and ``on_epoch(epoch, {"wer": ..., "dev_loss": ..., "train_loss": ...})`` is
called; returning False stops training early (the model is still usable).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from edgetune.data._text import group_wer, word_error_rate
from edgetune.errors import ConfigError, TrainingError
from edgetune.knobs import FRAME_SHIFT_MS, SUBSAMPLING, Knobs, PruneSchedule, TrainSettings
from edgetune.model.quant import set_quant
from edgetune.train._batching import Batch, Example, bucket_batches, collate, collate_gathered, resident
from edgetune.train._fast import FastPath, Forward, apply_observer_mode, lr_for_batch, make_optimizer
from edgetune.train.pruning import StructuredPruner, count_params

#: train + dev features up to this size are moved to the GPU once and batched there
GPU_RESIDENT_MAX_BYTES = 2 * 1024**3
SYNC_EVERY = 50           # steps between host syncs (loss finiteness, progress text)
GRADUAL_STEPS = 4          # pruning steps of the gradual schedule
GRADUAL_SPAN = 0.3         # ... spread over this fraction of training after prune_at
WARMUP_FRACTION = 0.08
FINAL_LR_FRACTION = 0.02
GRAD_CLIP = 5.0
WEIGHT_DECAY = 1e-2

OnEpoch = Callable[[int, dict[str, float]], Any]


@dataclass
class TrainResult:
    """What happened during training (written into result.json)."""

    device: str
    epochs_run: int
    steps: int
    train_seconds: float
    stopped_early: bool
    params_initial: int
    params_final: int
    qat_start_step: int | None
    prune_steps: list[int]
    history: list[dict[str, float]] = field(default_factory=list)
    gpu_energy_j: float | None = None     # the device's NVML energy counter over the run (whole GPU)
    paused: bool = False                  # stopped at a deadline with a checkpoint: resume to finish

    @property
    def gpu_seconds(self) -> float:
        """Wall seconds this run held a CUDA device (0 on CPU)."""
        return self.train_seconds if self.device.startswith("cuda") else 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; an explicit CUDA device that is absent is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was asked for but CUDA is not available here; use device='cpu' or 'auto'")
    return torch.device(name)


class _GpuEnergy:
    """Energy of one CUDA device through NVML (``pynvml``), when the driver exposes the counter.

    The counter belongs to the whole GPU: with several workers on one device their runs overlap
    and each sees the others' energy too (sum per study only over one worker per GPU).
    """

    def __init__(self, device: torch.device) -> None:
        self._handle = None
        if device.type != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            uuid = str(torch.cuda.get_device_properties(device).uuid)
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
            self._start = self._read()
        except Exception:  # no pynvml, no permission, or an old driver: energy stays unknown
            self._handle = None

    def _read(self) -> float:
        return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1000.0  # mJ -> J

    def joules(self) -> float | None:
        if self._handle is None:
            return None
        try:
            return self._read() - self._start
        except Exception:
            return None


def lr_at(step: int, total: int, peak: float, warmup_fraction: float = WARMUP_FRACTION) -> float:
    """Linear warmup over ``warmup_fraction`` of the steps, then cosine decay to FINAL_LR_FRACTION x peak."""
    warmup = max(1, int(warmup_fraction * total))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


def ctc_greedy(logits: torch.Tensor, vocabulary: Sequence[str], blank: int = 0) -> str:
    """Best path of one utterance's logits [T, V]: collapse repeats, drop blanks, tidy spaces."""
    return _collapse(logits.argmax(dim=-1).tolist(), vocabulary, blank)


def _collapse(best: Sequence[int], vocabulary: Sequence[str], blank: int = 0) -> str:
    out, prev = [], -1
    for i in best:
        if i != prev and i != blank:
            out.append(vocabulary[i])
        prev = i
    return " ".join("".join(out).split())


def wer_from_transcripts(rows: list[dict[str, Any]], key: str = "hyp") -> dict[str, Any]:
    """Overall, per-group and worst-group WER of ``rows`` (as written to transcripts.jsonl)."""
    refs = [r["ref"] for r in rows]
    hyps = [r[key] for r in rows]
    per_group = group_wer(refs, hyps, [r["group"] for r in rows])
    return {"wer": word_error_rate(refs, hyps), "wer_per_group": per_group,
            "worst_group_wer": max(per_group.values()) if per_group else word_error_rate(refs, hyps)}


def feature_stats(examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor]:
    frames = torch.cat([e.feats for e in examples], dim=0).double()
    return frames.mean(dim=0).float(), frames.std(dim=0).float()


@torch.no_grad()
def evaluate(model: Any, examples: Sequence[Example], *, batch_size: int, pad_value: float,
             vocabulary: Sequence[str], device: torch.device | None = None) -> dict[str, Any]:
    """Dev loss and greedy WER of ``model`` (eval mode, full utterances with the chunk mask)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    refs, hyps, groups, losses, weights = [], [], [], [], []
    lengths = [e.frames for e in examples]
    for idx in bucket_batches(lengths, batch_size):
        batch = collate([examples[i] for i in idx], model.chunk_frames, model.subsampling, pad_value)
        logits = model(batch.feats.to(device)).float()
        log_probs = logits.log_softmax(-1).transpose(0, 1)
        loss = F.ctc_loss(log_probs, batch.targets.to(device), batch.input_lengths.to(device),
                          batch.target_lengths.to(device), blank=0, zero_infinity=True)
        losses.append(loss)
        weights.append(len(idx))
        best = logits.argmax(dim=-1).cpu()          # one host copy per batch, not one per utterance
        for j, n in enumerate(batch.input_lengths.tolist()):
            hyps.append(_collapse(best[j, :n].tolist(), vocabulary))
        refs += batch.texts
        groups += [examples[i].group for i in idx]
    model.train(was_training)
    per_group = group_wer(refs, hyps, groups)
    losses = torch.stack(losses).tolist() if losses else []
    return {"loss": sum(l * w for l, w in zip(losses, weights)) / max(1, sum(weights)),
            "wer": word_error_rate(refs, hyps), "wer_per_group": per_group,
            "worst_group_wer": max(per_group.values()) if per_group else float("nan"),
            "refs": refs, "hyps": hyps}


class _Progress:
    """A rich progress bar over training steps (or nothing; ``echo`` then prints the log lines)."""

    def __init__(self, enabled: bool, total: int, title: str, echo: bool = False) -> None:
        self.bar = None
        self.echo = echo
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("{task.fields[info]}"), transient=True)
            self.task = self.bar.add_task(title, total=total, info="")

    def __enter__(self) -> "_Progress":
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def update(self, info: str | None, advance: int = 1) -> None:
        """Advance the bar; ``info`` None keeps the last text."""
        if self.bar is not None:
            if info is None:
                self.bar.update(self.task, advance=advance)
            else:
                self.bar.update(self.task, advance=advance, info=info)

    def log(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.log(text)
        elif self.echo:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _phase_steps(knobs: Knobs, settings: TrainSettings, total: int) -> tuple[int | None, list[int]]:
    qat_start = None
    if knobs.bits != 32 and settings.qat_fraction > 0:
        qat_start = min(total - 1, int(round((1.0 - settings.qat_fraction) * total)))
    prune_steps: list[int] = []
    if knobs.sparsity > 0:
        first = int(round(settings.prune_at * total))
        if knobs.prune_schedule == PruneSchedule.GRADUAL:
            span = max(GRADUAL_STEPS, int(GRADUAL_SPAN * total))
            prune_steps = [min(total - 1, first + k * span // GRADUAL_STEPS) for k in range(GRADUAL_STEPS)]
        else:
            prune_steps = [min(total - 1, first)]
    return qat_start, prune_steps


@dataclass
class Distillation:
    """Knowledge distillation from a teacher's frame posteriors (the base model a candidate is derived from).

    The loss is ``(1 - weight) * CTC + weight * T^2 * KL(teacher || student)`` at temperature
    ``T``, averaged over the valid output frames; the teacher runs at the student's chunk.
    """

    teacher: Any
    weight: float = 0.5
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0 or self.temperature <= 0:
            raise ConfigError(f"distillation weight must be in [0, 1] and temperature > 0, "
                              f"but got weight={self.weight}, temperature={self.temperature}")


def _kd_loss(student: torch.Tensor, teacher: torch.Tensor, lengths: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over valid frames of T^2 * KL(softmax(teacher / T) || softmax(student / T)); logits [B, T', V]."""
    s = (student.float() / temperature).log_softmax(-1)
    t = (teacher.float() / temperature).log_softmax(-1)
    kl = (t.exp() * (t - s)).sum(-1)                                               # [B, T']
    valid = torch.arange(kl.shape[1], device=kl.device)[None, :] < lengths.to(kl.device)[:, None]
    return temperature ** 2 * (kl * valid).sum() / valid.sum().clamp(min=1)


def train_model(model: Any, knobs: Knobs, settings: TrainSettings, train_set: Sequence[Example],
                dev_set: Sequence[Example], *, vocabulary: Sequence[str], pad_value: float,
                on_epoch: OnEpoch | None = None, progress: bool = True,
                spec_augment: Callable[..., torch.Tensor] | None = None,
                chunk_choices: Sequence[int] | None = None, distill: Distillation | None = None,
                set_stats: bool = True, qat_from_start: bool = False,
                checkpoint: Any | None = None, deadline: float | None = None, echo: bool = False,
                fast: FastPath | None = None, reference_batch: int | None = None,
                weight_decay: float = WEIGHT_DECAY, warmup_fraction: float = WARMUP_FRACTION,
                grad_clip: float = GRAD_CLIP) -> TrainResult:
    """Train ``model`` in place for ``knobs`` (QAT width, sparsity, lr, SpecAugment) at ``settings``.

    ``chunk_choices``: dynamic chunk training (WeNet U2): each batch draws its attention chunk
    from these ``chunk_ms`` values (0 = full context), so one set of weights serves every
    chunk at inference. ``distill``: add a KL term to the base's frame posteriors.
    ``set_stats=False`` keeps the model's feature normalisation (a derived candidate keeps its
    base's). ``qat_from_start``: fake-quant from step 0 (a candidate fine-tuned from a trained
    base). ``checkpoint`` (:class:`edgetune.train.TrainCheckpoint`): saved after every epoch and
    resumed from, with optimizer, schedule, RNG and data order (float training without pruning only).
    ``deadline`` (``time.monotonic()`` seconds, with a checkpoint): pause after the first epoch that
    ends past it (``result.paused``); the same call resumes there. ``fast``: the step's speed-ups
    (default :meth:`FastPath.default` for the device: CPU numbers stay as they were).
    ``reference_batch``: the batch size ``knobs.lr`` was tuned at; the peak lr is then scaled to
    ``settings.batch_size`` by :func:`lr_for_batch` (None: ``knobs.lr`` as given).
    ``weight_decay``, ``warmup_fraction``, ``grad_clip``: the recipe's AdamW decay, warmup share of
    the steps and gradient-norm clip (defaults: the module constants; a resumed checkpoint takes
    the ``weight_decay`` given here, so population-based training can change it between rounds).

    Raises TrainingError on a NaN/inf loss or CUDA out-of-memory, naming the step and the fix.
    """
    if not train_set:
        raise TrainingError("the training split is empty; check the dataset")
    if checkpoint is not None and (knobs.sparsity > 0 or (knobs.bits != 32 and settings.qat_fraction > 0)):
        raise ConfigError("checkpointed training covers float training without pruning (a base model): "
                          f"got bits {knobs.bits}, sparsity {knobs.sparsity}; fix: train the base at bits 32, "
                          "sparsity 0, or train without a checkpoint")
    device = resolve_device(settings.device)
    if device.type == "cuda":
        size = sum(e.feats.numel() * e.feats.element_size() for e in [*train_set, *dev_set])
        if size <= GPU_RESIDENT_MAX_BYTES:  # the data stays on the GPU: no host-to-device copy per step
            train_set, dev_set = resident(train_set, device), resident(dev_set, device)
    fast = fast or FastPath.default(device)
    peak_lr = knobs.lr if reference_batch is None else lr_for_batch(knobs.lr, settings.batch_size, reference_batch)
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    old_threads = torch.get_num_threads()
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    if spec_augment is None and knobs.specaugment:
        from edgetune.data import spec_augment as _sa

        spec_augment = _sa

    if set_stats:
        mean, std = feature_stats(train_set)
        model.set_feature_stats(mean, std)
    model.to(device).train()
    apply_observer_mode(model, fast)
    forward = Forward(model, compile=fast.compile)
    gather = collate_gathered if fast.async_batches else collate
    teacher = None
    if distill is not None and distill.weight > 0:
        teacher = distill.teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    lengths = [e.frames for e in train_set]
    n_batches = math.ceil(len(train_set) / settings.batch_size)
    total = settings.epochs * n_batches
    qat_start, prune_steps = _phase_steps(knobs, settings, total)
    if qat_from_start and knobs.bits != 32:
        qat_start = 0
    head_bits = {name: 8 for name in model.edge_layers()} if knobs.bits == 4 else None
    pruner: StructuredPruner | None = None

    def make_opt() -> torch.optim.Optimizer:
        return make_optimizer(model, peak_lr, weight_decay, device, fast)

    opt = make_opt()
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())
    result = TrainResult(device=str(device), epochs_run=0, steps=0, train_seconds=0.0, stopped_early=False,
                         params_initial=count_params(model), params_final=0, qat_start_step=qat_start,
                         prune_steps=prune_steps)
    energy = _GpuEnergy(device)
    t0 = time.perf_counter()
    step, first_epoch, elapsed_before = 0, 1, 0.0
    if checkpoint is not None:
        state = checkpoint.load(model, opt, gen, device)
        if state is not None:
            step, first_epoch = state["step"], state["epoch"] + 1
            result.history = list(state["history"])
            result.epochs_run = state["epoch"]
            elapsed_before = float(state.get("train_seconds", 0.0))
            for group in opt.param_groups:
                group["weight_decay"] = weight_decay
    chunk_choices = list(chunk_choices or [])
    try:
        with _Progress(progress, total, f"train {_short(knobs)}", echo=echo) as bar:
            bar.update(None, advance=step)
            for epoch in range(first_epoch, settings.epochs + 1):
                running, seen = torch.zeros((), device=device), 0
                for idx in bucket_batches(lengths, settings.batch_size, gen):
                    if step == qat_start:
                        set_quant(model, knobs.bits, observer=knobs.observer.value, head_bits=head_bits)
                        bar.log(f"step {step}: quantization-aware training on ({knobs.bits}-bit)")
                    if step in prune_steps:
                        if pruner is None:
                            example = torch.zeros(1, 2 * model.chunk_frames, model.n_mels, device=device)
                            pruner = StructuredPruner(model, knobs.sparsity, example, steps=len(prune_steps))
                        before, after = pruner.step()
                        opt = make_opt()
                        bar.log(f"step {step}: pruned {before} -> {after} parameters")
                    chunk_ms = None
                    if chunk_choices:
                        chunk_ms = chunk_choices[int(torch.randint(len(chunk_choices), (1,), generator=gen))]
                    frames = model.chunk_frames if chunk_ms is None else max(SUBSAMPLING, chunk_ms // FRAME_SHIFT_MS)
                    batch = gather([train_set[i] for i in idx], frames, model.subsampling, pad_value)
                    loss = _train_step(model, batch, opt, device, autocast, lr_at(step, total, peak_lr, warmup_fraction),
                                       spec_augment if knobs.specaugment else None, gen, chunk_ms=chunk_ms,
                                       teacher=teacher, distill=distill, forward=forward,
                                       host_lengths=fast.async_batches, grad_clip=grad_clip)
                    running += loss * len(idx)
                    seen += len(idx)
                    step += 1
                    if step % SYNC_EVERY == 0 or seen == len(train_set):  # one host sync per SYNC_EVERY steps
                        _check_finite(running, step, epoch, lr_at(step, total, peak_lr, warmup_fraction), knobs)
                        bar.update(f"epoch {epoch}/{settings.epochs} loss {float(loss):.3f}", advance=0)
                    bar.update(None)
                dev = evaluate(model, dev_set, batch_size=settings.batch_size, pad_value=pad_value,
                               vocabulary=vocabulary, device=device) if dev_set else {"loss": float("nan"),
                                                                                     "wer": float("nan")}
                _check_finite(running, step, epoch, lr_at(step, total, peak_lr, warmup_fraction), knobs)
                record = {"epoch": epoch, "train_loss": float(running) / max(1, seen), "dev_loss": dev["loss"],
                          "wer": dev["wer"], "worst_group_wer": dev.get("worst_group_wer", float("nan")),
                          "seconds": elapsed_before + time.perf_counter() - t0}
                result.history.append(record)
                result.epochs_run = epoch
                if checkpoint is not None:
                    checkpoint.save(model, opt, gen, epoch=epoch, step=step, history=result.history,
                                    train_seconds=record["seconds"], device=str(device))
                    if deadline is not None and time.monotonic() > deadline and epoch < settings.epochs:
                        result.paused = True
                        bar.log(f"paused after epoch {epoch}/{settings.epochs} (time budget); run again to resume")
                        break
                bar.log(f"epoch {epoch}/{settings.epochs}: train loss {record['train_loss']:.3f}, dev loss "
                        f"{dev['loss']:.3f}, dev WER {dev['wer']:.3f} ({record['seconds']:.0f} s)")
                if on_epoch is not None and on_epoch(epoch, {k: v for k, v in record.items() if k != "epoch"}) is False:
                    result.stopped_early = True
                    break
    except torch.cuda.OutOfMemoryError as exc:
        raise TrainingError(f"CUDA out of memory at step {step} with batch_size {settings.batch_size} "
                            f"(knobs {knobs.to_dict()}); fix: lower batch_size or the depth multiplier") from exc
    finally:
        if settings.num_threads:
            torch.set_num_threads(old_threads)
    # a run stopped before QAT/pruning still yields the candidate the knobs describe
    if qat_start is not None and step <= qat_start:
        set_quant(model, knobs.bits, observer=knobs.observer.value, head_bits=head_bits)
        calibrate(model, train_set, pad_value=pad_value, batch_size=settings.batch_size)
    if prune_steps and (pruner is None or pruner.done < pruner.steps):
        if pruner is None:
            example = torch.zeros(1, 2 * model.chunk_frames, model.n_mels, device=device)
            pruner = StructuredPruner(model, knobs.sparsity, example, steps=1)
        while pruner.done < pruner.steps:
            pruner.step()
        if qat_start is not None:
            calibrate(model, train_set, pad_value=pad_value, batch_size=settings.batch_size)
    result.steps = step
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the GPU's queued work belongs to this run's time
        result.gpu_energy_j = energy.joules()
    result.train_seconds = elapsed_before + time.perf_counter() - t0
    result.params_final = count_params(model)
    model.eval()
    return result


def _check_finite(running: torch.Tensor, step: int, epoch: int, lr: float, knobs: Knobs) -> None:
    if not math.isfinite(float(running)):
        raise TrainingError(
            f"loss became NaN by step {step} (epoch {epoch}, lr {lr:.2e}, knobs {knobs.to_dict()}); "
            f"fix: lower the learning rate (knob lr)")


def _train_step(model: Any, batch: Batch, opt: torch.optim.Optimizer, device: torch.device,
                autocast: Any, lr: float, augment: Callable[..., torch.Tensor] | None,
                gen: torch.Generator, *, chunk_ms: int | None = None, teacher: Any | None = None,
                distill: Distillation | None = None, forward: Forward | None = None,
                host_lengths: bool = False, grad_clip: float = GRAD_CLIP) -> torch.Tensor:
    """One optimizer step; returns the loss as a device tensor (no host sync: the caller checks it).

    ``forward``: the model's (possibly compiled) forward; a compiled one that fails is switched to
    eager and the step is redone. ``host_lengths``: copy targets without waiting (pinned) and give
    ``F.ctc_loss`` its lengths on the host, where it reads them (same values, no device round trip).
    """
    for group in opt.param_groups:
        group["lr"] = lr
    feats = batch.feats.to(device)
    if augment is not None:
        feats = augment(feats, gen)
    if host_lengths:
        targets = batch.targets.to(device, non_blocking=True)
        ctc_lengths = batch.input_lengths, batch.target_lengths
        kd_lengths = batch.input_lengths.to(device, non_blocking=True) if teacher is not None else batch.input_lengths
    else:
        targets = batch.targets.to(device)
        kd_lengths = batch.input_lengths.to(device)
        ctc_lengths = kd_lengths, batch.target_lengths.to(device)
    forward = forward or Forward(model)

    def loss_and_backward(run: Callable[..., torch.Tensor]) -> torch.Tensor:
        with autocast:
            logits = run(feats, chunk_ms)
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)
        loss = F.ctc_loss(log_probs, targets, *ctc_lengths, blank=0, zero_infinity=True)
        if teacher is not None and distill is not None:
            with torch.no_grad(), autocast:
                target = teacher(batch.feats.to(device), chunk_ms)   # the teacher hears the clean features
            loss = (1 - distill.weight) * loss + distill.weight * _kd_loss(logits, target, kd_lengths,
                                                                            distill.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        return loss

    if forward.active:
        try:
            loss = loss_and_backward(forward)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as exc:  # a compile error surfaces in the forward or the first backward
            forward.disable(exc)
            loss = loss_and_backward(forward)
    else:
        loss = loss_and_backward(forward)
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return loss.detach()


@torch.no_grad()
def calibrate(model: Any, examples: Sequence[Example], *, pad_value: float, batch_size: int = 16,
              max_batches: int = 8) -> None:
    """Let enabled activation observers see data (train-mode forward passes without updates)."""
    was_training = model.training
    model.train()
    device = next(model.parameters()).device
    lengths = [e.frames for e in examples]
    for idx in bucket_batches(lengths, batch_size)[:max_batches]:
        batch = collate([examples[i] for i in idx], model.chunk_frames, model.subsampling, pad_value)
        model(batch.feats.to(device))
    model.train(was_training)


def _short(knobs: Knobs) -> str:
    return f"b{knobs.bits} s{knobs.sparsity:.2f} d{knobs.depth_multiplier:.2f} c{knobs.chunk_ms}"
