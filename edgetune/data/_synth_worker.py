"""Worker process of the corpus builder: synthesizes one shard, in order, in a fresh process.

Reads ``{"root", "shard", "jobs"}`` as JSON on stdin, writes each utterance's WAV (16 kHz,
16-bit, atomically), prints ``done <id>`` per utterance for the progress bar, and finally
writes ``shards/<shard>.jsonl`` (atomically) with the manifest lines. Run by
:func:`edgetune.data._corpus.build_corpus`; not meant to be started by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    from edgetune.data._audio import resample, write_wav
    from edgetune.data._corpus import SAMPLE_RATE, _Job, shard_record
    from edgetune.data._espeak import ESPEAK_RATE, Synthesizer
    from edgetune.data._manifest import write_jsonl

    request = json.load(sys.stdin)
    root = Path(request["root"])
    synth = Synthesizer()
    records = []
    for raw in request["jobs"]:
        job = _Job(**raw)
        pcm = synth.synthesize(job.text, job.voice, job.rate, job.pitch, job.pitch_range, job.noise_seed)
        if pcm.size == 0:
            raise RuntimeError(f"eSpeak produced no audio for {job.id} ({job.text!r}, voice {job.voice})")
        wave = resample(pcm.astype(np.float64) / 32768.0, ESPEAK_RATE, SAMPLE_RATE)
        peak = float(np.max(np.abs(wave)))
        wave = wave * (job.peak / peak) if peak > 0 else wave
        wave = np.concatenate([np.zeros(job.lead_ms * SAMPLE_RATE // 1000, wave.dtype), wave,
                               np.zeros(job.tail_ms * SAMPLE_RATE // 1000, wave.dtype)])
        pcm16 = np.round(np.clip(wave, -1.0, 32767 / 32768) * 32768).astype(np.int16)
        write_wav(root / job.path, pcm16, SAMPLE_RATE)
        records.append(shard_record(root, job, pcm16.size))
        print(f"done {job.id}", flush=True)
    write_jsonl(root / "shards" / f"{request['shard']}.jsonl", records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
