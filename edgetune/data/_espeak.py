"""eSpeak NG speech synthesis through ctypes (the library and data ship in ``espeakng-loader``).

libespeak-ng is GPL-3.0: it is loaded at run time to generate data, never vendored.

A voice is ``<accent>+<variant>``: the accent is one of the English language files
(:data:`ENGLISH_ACCENTS`), the variant a voice-quality file in ``voices/!v`` (formants,
pitch, breathiness: m1..m8, f1..f5, klatt*, whisper, ...). eSpeak's output depends on the
calls made before in the same process (its wave generator keeps state; neither
``espeak_ng_SetRandSeed`` nor ``espeak_Terminate`` resets it), but the same call sequence
in a fresh process is bit-identical. So the corpus builder synthesizes each fixed shard of
utterances in its own fresh process.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgetune.errors import DataError

ESPEAK_RATE = 22050  # libespeak-ng's output sample rate (int16 mono)

# Accent (language file) -> group name used for per-group WER. "en" is British English.
ENGLISH_ACCENTS: dict[str, str] = {
    "en-us": "en-us",
    "en-us-nyc": "en-us-nyc",
    "en": "en-gb",
    "en-gb-x-rp": "en-gb-x-rp",
    "en-gb-scotland": "en-gb-scotland",
    "en-gb-x-gbclan": "en-gb-x-gbclan",
    "en-gb-x-gbcwmd": "en-gb-x-gbcwmd",
    "en-029": "en-029",
}

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_VOLUME = 40  # of 100 (the default); at 100 the loud variants clip in eSpeak's int16 output, at 40 none did
_POS_CHARACTER, _CHARS_UTF8 = 1, 1
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _loader():
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - in the full extra
        raise DataError(f"the built-in corpus needs espeakng-loader ({exc}); fix: pip install 'edgetune[full]' "
                        f"(or pip install espeakng-loader)") from None
    return espeakng_loader


@lru_cache(maxsize=1)
def espeak_data_dir() -> Path:
    return Path(_loader().get_data_path())


@lru_cache(maxsize=1)
def voice_variants() -> dict[str, str]:
    """Variant name -> gender ("male", "female" or "other") for every file in ``voices/!v``."""
    folder = espeak_data_dir() / "voices" / "!v"
    out = {}
    for f in sorted(folder.iterdir(), key=lambda p: p.name):
        if not f.is_file() or " " in f.name:
            continue  # "Mr serious": a space cannot be passed in "<accent>+<variant>"
        gender = "other"
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "gender" and parts[1] in ("male", "female"):
                gender = parts[1]
        out[f.name] = gender
    if not out:
        raise DataError(f"no eSpeak voice variants found in {folder}; reinstall espeakng-loader")
    return out


class Synthesizer:
    """One eSpeak NG engine in this process. Create one per process; calls are not thread-safe."""

    def __init__(self) -> None:
        loader = _loader()
        self._lib = ctypes.CDLL(loader.get_library_path())
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, loader.get_data_path().encode(), 0)
        if rate != ESPEAK_RATE:
            raise DataError(f"eSpeak NG initialisation returned {rate}, expected sample rate {ESPEAK_RATE}; "
                            "reinstall espeakng-loader")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: eSpeak calls it later
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, n, _events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue synthesis

    def synthesize(self, text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50,
                   noise_seed: int = 0) -> np.ndarray:
        """int16 samples at 22050 Hz. ``rate`` in words per minute (80..450), pitch and range 0..100.

        ``noise_seed`` seeds eSpeak's noise generator (breath, aspiration), which otherwise
        starts from the clock.
        """
        lib = self._lib
        lib.espeak_ng_SetRandSeed(ctypes.c_long(noise_seed))
        variant = voice.partition("+")[2]
        err = lib.espeak_SetVoiceByName(voice.encode())
        if err != 0 or (variant and variant not in voice_variants()):  # eSpeak ignores an unknown variant
            raise DataError(f"eSpeak NG has no voice {voice!r} (error {err}); accents: "
                            f"{', '.join(ENGLISH_ACCENTS)}; variants: files in {espeak_data_dir() / 'voices' / '!v'}")
        for param, value in ((_PARAM_RATE, rate), (_PARAM_VOLUME, _VOLUME), (_PARAM_PITCH, pitch),
                             (_PARAM_RANGE, pitch_range)):
            lib.espeak_SetParameter(param, int(value), 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise DataError(f"eSpeak NG failed to synthesize {text!r} with voice {voice!r} (error {err})")
        lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
