"""Real-dataset loading (JSONL folders, LibriSpeech layout), validation, audio I/O, text, manifests."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgetune.data import (SPLITS, VOCABULARY, CorpusPreset, Utterance, build_corpus, decode, encode, load_audio,
                           load_dataset, normalize_text, read_manifest, unknown_chars, validate_dataset,
                           write_manifest)
from edgetune.errors import DataError


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> list[tuple[np.ndarray, str]]:
    """A dozen real synthesized utterances (16 kHz float32, transcript)."""
    folder = tmp_path_factory.mktemp("speech") / "c"
    splits = build_corpus(CorpusPreset("speech", train=8, dev=2, test=2, shard_size=12), cache_dir=folder,
                          seed=11, progress=False)
    return [(load_audio(u.audio_filepath), u.text) for s in SPLITS for u in splits.split(s)]


def _flac(path: Path, wave: np.ndarray, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, rate, format="FLAC", subtype="PCM_16")
    return path


# --- audio -------------------------------------------------------------------------------

def test_load_audio_downmixes_and_resamples_a_sine(tmp_path):
    rate, f0 = 44100, 440.0
    t = np.arange(rate) / rate  # 1 s
    left = 0.8 * np.sin(2 * np.pi * f0 * t)
    path = tmp_path / "sine.flac"
    sf.write(path, np.stack([left, 0.5 * left], axis=1), rate, format="FLAC")  # stereo, 44.1 kHz
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert wave.size == 16000
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    assert abs(np.argmax(spectrum) * 16000 / wave.size - f0) <= 1.0
    assert abs(np.max(np.abs(wave[1000:-1000])) - 0.6) < 0.01  # mean of the channels: (0.8 + 0.4) / 2
    # an 8 kHz int16 WAV is upsampled to 16 kHz with the same length in seconds
    sf.write(tmp_path / "low.wav", (left[: 44100 // 2] * 32767).astype(np.int16), 8000, subtype="PCM_16")
    assert load_audio(tmp_path / "low.wav").size == 2 * (44100 // 2)


def test_resample_matches_scipy():
    from scipy.signal import resample_poly

    from edgetune.data import resample

    x = np.random.default_rng(0).standard_normal(12345)
    for orig, new, up, down in ((22050, 16000, 320, 441), (8000, 16000, 2, 1), (48000, 16000, 1, 3)):
        np.testing.assert_allclose(resample(x, orig, new), resample_poly(x, up, down), atol=1e-5)


def test_load_audio_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.flac is missing"):
        load_audio(tmp_path / "nope.flac")
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + bytes(range(256)) * 4)
    with pytest.raises(DataError, match=r"bad\.flac is unreadable"):
        load_audio(bad)


# --- text --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, norm", [
    ("Set a TIMER for 10 minutes!", "set a timer for ten minutes"),
    ("Call 0415 555 2671", "call zero four one five five hundred fifty five two thousand six hundred seventy one"),
    ("It's 7:30, don't be late.", "it's seven thirty don't be late"),
    ("'quoted' words", "quoted words"),
    ("Café  au   lait", "cafe au lait"),
    ("twenty-one 3.5% of 1st", "twenty one three point five percent of first"),
    ("rock & roll", "rock and roll"),
    ("Straße", "strae"),
    ("", ""),
    ("2024", "two thousand twenty four"),
    ("12345678", "one two three four five six seven eight"),
])
def test_normalize_text(raw, norm):
    assert normalize_text(raw) == norm
    assert set(normalize_text(raw)) <= set(VOCABULARY[1:])


def test_unknown_chars_and_codec():
    assert unknown_chars("Straße ø ok") == {"ß", "ø"}
    assert unknown_chars("Hello, World! 42") == set()
    assert VOCABULARY[0] == "<blank>" and len(VOCABULARY) == 29
    text = "don't call me at nine"
    assert decode(encode(text)) == text
    assert decode([0, *encode("ab"), 0]) == "ab"
    with pytest.raises(DataError, match="normalize_text"):
        encode("Hello")


# --- manifests -----------------------------------------------------------------------------

def test_manifest_round_trip_and_relative_paths(tmp_path):
    inside = Utterance(str(tmp_path / "audio" / "a.wav"), 1.25, "call mom", "en-us", "u1")
    outside = Utterance("/elsewhere/b.wav", 0.5, "yes", "en-gb", "u2")
    path = tmp_path / "m.jsonl"
    write_manifest(path, [inside, outside])
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["audio_filepath"] == "audio/a.wav" and lines[1]["audio_filepath"] == "/elsewhere/b.wav"
    assert read_manifest(path) == [inside, outside]
    assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]  # no temporary file left behind


def test_manifest_reads_nemo_keys(tmp_path):
    path = tmp_path / "nemo.json"
    path.write_text('{"audio_filepath": "x.wav", "duration": 2, "text": "hi", "speaker": 7, "extra": 1}\n\n')
    (u,) = read_manifest(path)
    assert u == Utterance(str(tmp_path / "x.wav"), 2.0, "hi", "7", "")


@pytest.mark.parametrize("line, reason", [
    ("{not json", "not valid JSON"),
    ('{"audio_filepath": "a.wav", "text": "x"}', "missing key.*duration"),
    ('{"audio_filepath": "a.wav", "duration": "long", "text": "x"}', "duration must be a number"),
    ('{"audio_filepath": "a.wav", "duration": -1, "text": "x"}', "duration must be >= 0"),
    ("[1, 2]", "expected a JSON object"),
])
def test_bad_manifest_line_names_file_and_line(tmp_path, line, reason):
    path = tmp_path / "train.jsonl"
    path.write_text('{"audio_filepath": "a.wav", "duration": 1, "text": "ok"}\n' + line + "\n")
    with pytest.raises(DataError, match=rf"train\.jsonl:2: {reason}"):
        read_manifest(path)


# --- JSONL dataset folders -------------------------------------------------------------------

def _nemo_folder(root: Path, speech, speakers=("ann", "bob", "cy")) -> Path:
    for s_i, split in enumerate(SPLITS):
        lines = []
        for i, (wave, text) in enumerate(speech[s_i * 4:(s_i + 1) * 4]):
            path = _flac(root / "audio" / f"{split}{i}.flac", wave)
            lines.append({"audio_filepath": f"audio/{path.name}", "duration": wave.size / 16000,
                          "text": text.upper() + "!", "speaker": speakers[s_i]})
        (root / f"{split}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def test_jsonl_folder_loads_normalises_and_validates(tmp_path, speech):
    root = _nemo_folder(tmp_path / "ds", speech)
    # one file stereo at 44.1 kHz: handled (downmix + resample), not an error
    wave, _ = speech[0]
    from edgetune.data import resample

    hi = resample(wave, 16000, 44100)
    sf.write(root / "audio" / "train0.flac", np.stack([hi, hi], axis=1), 44100, format="FLAC")
    splits = load_dataset(root)
    assert splits.name == str(root) and splits.root == root
    assert [len(splits.split(s)) for s in SPLITS] == [4, 4, 4]
    assert splits.train[0].text == speech[0][1] and splits.train[0].group == "ann"
    assert Path(splits.test[0].audio_filepath).is_absolute()
    validate_dataset(splits)


def test_validation_lists_every_bad_file_and_reason(tmp_path, speech):
    root = _nemo_folder(tmp_path / "ds", speech)
    lines = [json.loads(x) for x in (root / "train.jsonl").read_text().splitlines()]
    (root / "audio" / "train0.flac").write_bytes(b"fLaC\x00\x00\x00\x22" + b"\x13" * 300)  # corrupt FLAC
    (root / "audio" / "train1.flac").unlink()  # missing
    lines[2]["text"] = " ?! "  # no transcript once normalised
    lines[3]["duration"] += 0.5  # wrong duration
    (root / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    sf.write(root / "audio" / "empty.wav", np.zeros(0, np.float32), 16000)  # a 0-frame FLAC will not even open
    (root / "dev.jsonl").write_text((root / "dev.jsonl").read_text() + json.dumps(
        {"audio_filepath": "audio/empty.wav", "duration": 0, "text": "hello"}) + "\n")
    splits = load_dataset(root)
    with pytest.raises(DataError) as err:
        validate_dataset(splits)
    msg = str(err.value)
    assert "5 of 13 utterances are unusable" in msg
    assert f"{root / 'audio' / 'train0.flac'} (id -): unreadable" in msg
    assert f"{root / 'audio' / 'train1.flac'} (id -): missing" in msg
    assert f"{root / 'audio' / 'train2.flac'} (id -): no transcript" in msg
    assert f"{root / 'audio' / 'train3.flac'} (id -): wrong duration: manifest says" in msg
    assert f"{root / 'audio' / 'empty.wav'} (id -): empty" in msg
    assert "train4" not in msg and "test0" not in msg


# --- LibriSpeech layout -------------------------------------------------------------------

def _librispeech(root: Path, layout: dict[str, dict[str, list[int]]], speech) -> None:
    """layout: split folder -> speaker -> indices into ``speech``."""
    for folder, speakers in layout.items():
        for speaker, idx in speakers.items():
            chapter = root / folder / speaker / "100"
            lines = []
            for k, i in enumerate(idx):
                uid = f"{speaker}-100-{k:04d}"
                wave, text = speech[i]
                _flac(chapter / f"{uid}.flac", wave)
                lines.append(f"{uid} {text.upper()}\n")
            (chapter / f"{speaker}-100.trans.txt").write_text("".join(lines))


def test_librispeech_split_folders_map_to_splits(tmp_path, speech, caplog):
    root = tmp_path / "LibriSpeech"
    _librispeech(root, {"train-clean-100": {"11": [0, 1], "12": [2]}, "train-other-500": {"13": [3]},
                        "dev-clean": {"21": [4, 5]}, "test-clean": {"31": [6, 7], "32": [8]}}, speech)
    (root / "SPEAKERS.TXT").write_text("; ID | SEX | SUBSET\n11 | F | train-clean-100\n12 | M | x\n"
                                       "21 | F | dev-clean\n31 | M | test-clean\n")
    trans = root / "test-clean" / "32" / "100" / "32-100.trans.txt"
    trans.write_text(trans.read_text().rstrip("\n") + " ÆØ\n")  # characters outside the vocabulary
    with caplog.at_level(logging.WARNING):
        splits = load_dataset(root)
    assert [len(splits.split(s)) for s in SPLITS] == [4, 2, 3]
    assert {u.group for u in splits.train} == {"F", "M", "13"}  # sex from SPEAKERS.TXT, else speaker id
    assert splits.test[0].id == "31-100-0000" and splits.test[0].text == speech[6][1]
    assert "'æ' x1" in caplog.text and "'ø' x1" in caplog.text
    validate_dataset(splits)


def test_single_librispeech_split_is_carved_by_speaker(tmp_path, speech, caplog):
    root = tmp_path / "dev-clean"
    _librispeech(root / "..", {"dev-clean": {str(s): [s % 12, (s + 5) % 12] for s in range(20, 40)}}, speech)
    with caplog.at_level(logging.WARNING):
        splits = load_dataset(root)
    speakers = {s: {u.id.split("-")[0] for u in splits.split(s)} for s in SPLITS}
    assert all(speakers[s] for s in SPLITS)
    assert not speakers["train"] & speakers["test"] and not speakers["train"] & speakers["dev"]
    assert not speakers["dev"] & speakers["test"]
    assert sum(len(splits.split(s)) for s in SPLITS) == 40
    assert "carved dev/test from train by speaker" in caplog.text
    assert load_dataset(root, seed=0) == splits  # the same seed carves the same speakers


def test_unknown_dataset_specs(tmp_path):
    with pytest.raises(DataError, match="neither a preset.*smoke"):
        load_dataset("smok")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="neither train/dev/test .jsonl manifests nor a LibriSpeech layout"):
        load_dataset(tmp_path)
