"""The built-in eSpeak corpus: speaker independence, determinism, caching, resuming."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgetune.data import SPLITS, VOCABULARY, CorpusPreset, build_corpus, normalize_text, validate_dataset
from edgetune.data._corpus import MARKER, PRESETS, plan_corpus, split_variants
from edgetune.data._espeak import ENGLISH_ACCENTS
from edgetune.errors import ConfigError, DataError

PRESET = CorpusPreset("unit", train=16, dev=6, test=8, shard_size=8)


def _raw_lines(folder: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]


def _audio_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "wav").rglob("*.wav"))}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus") / "unit"
    return build_corpus(PRESET, cache_dir=folder, seed=3, progress=False)


def test_sizes_texts_and_files(corpus):
    assert [len(corpus.split(s)) for s in SPLITS] == [16, 6, 8]
    vocab = set(VOCABULARY[1:])
    for split in SPLITS:
        for u in corpus.split(split):
            assert Path(u.audio_filepath).is_file() and Path(u.audio_filepath).is_absolute()
            assert u.text and set(u.text) <= vocab and normalize_text(u.text) == u.text
            assert 0.3 < u.duration < 10
            assert u.group in ENGLISH_ACCENTS.values()
            assert u.id.startswith(split)
    validate_dataset(corpus)  # every file decodes, durations match the manifest


def test_speaker_independent_splits(corpus):
    variants = {s: {r["variant"] for r in _raw_lines(corpus.root, s)} for s in SPLITS}
    voices = {s: {r["voice"] for r in _raw_lines(corpus.root, s)} for s in SPLITS}
    assert not variants["train"] & variants["test"]
    assert not variants["train"] & variants["dev"]
    assert not variants["dev"] & variants["test"]
    assert not voices["train"] & voices["test"]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_variant_split_is_disjoint_and_covers_every_variant(seed):
    parts = split_variants(seed)
    all_variants = [v for s in SPLITS for v in parts[s]]
    assert len(all_variants) == len(set(all_variants))
    assert len(parts["test"]) >= 5 and len(parts["dev"]) >= 3 and len(parts["train"]) > 50
    plan = plan_corpus(PRESETS["smoke"], seed)
    for split in SPLITS:
        assert {j.variant for j in plan[split]} <= set(parts[split])
        assert {j.accent for j in plan[split]} == set(ENGLISH_ACCENTS)  # every accent in every split


def test_plan_depends_on_seed_only():
    a, b, c = plan_corpus(PRESET, 5), plan_corpus(PRESET, 5), plan_corpus(PRESET, 6)
    assert a == b
    assert [j.text for j in a["train"]] != [j.text for j in c["train"]]


def test_two_fresh_builds_give_identical_bytes(corpus, tmp_path):
    # another process, another folder, another worker count: same manifests, same audio bytes
    other = tmp_path / "again"
    code = ("import sys; from edgetune.data import CorpusPreset, build_corpus; "
            "build_corpus(CorpusPreset('unit', train=16, dev=6, test=8, shard_size=8), "
            f"cache_dir=sys.argv[1], seed=3, progress=False, workers=1)")
    subprocess.run([sys.executable, "-c", code, str(other)], check=True, cwd=Path(__file__).parents[1])
    for split in SPLITS:
        assert (other / f"{split}.jsonl").read_bytes() == (corpus.root / f"{split}.jsonl").read_bytes()
    assert _audio_hashes(other) == _audio_hashes(corpus.root)
    assert len(_audio_hashes(other)) == 30


def test_complete_cache_is_loaded_without_synthesis(corpus):
    before = {p: p.stat().st_mtime_ns for p in (corpus.root / "wav").rglob("*.wav")}
    again = build_corpus(PRESET, cache_dir=corpus.root, seed=3, progress=False)
    assert again == corpus
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_interrupted_build_is_finished_not_used(corpus, tmp_path):
    folder = tmp_path / "crashed"
    build_corpus(PRESET, cache_dir=folder, seed=3, progress=False)
    # simulate a crash after two shards: marker says incomplete, later shards and manifests gone
    state = json.loads((folder / MARKER).read_text())
    state["complete"] = False
    (folder / MARKER).write_text(json.dumps(state))
    shard_files = sorted((folder / "shards").glob("*.jsonl"))
    for f in shard_files[2:]:
        f.unlink()
    for split in SPLITS:
        (folder / f"{split}.jsonl").unlink()
    (folder / "wav" / "test" / "test-000007.wav").unlink()
    kept = shard_files[0].stat().st_mtime_ns
    splits = build_corpus(PRESET, cache_dir=folder, seed=3, progress=False)
    assert json.loads((folder / MARKER).read_text())["complete"] is True
    assert shard_files[0].stat().st_mtime_ns == kept  # finished shards are not redone
    assert _audio_hashes(folder) == _audio_hashes(corpus.root)
    assert [len(splits.split(s)) for s in SPLITS] == [16, 6, 8]


def test_missing_audio_in_complete_cache_is_resynthesized(corpus, tmp_path):
    folder = tmp_path / "damaged"
    build_corpus(PRESET, cache_dir=folder, seed=3, progress=False)
    (folder / "wav" / "dev" / "dev-000002.wav").unlink()
    build_corpus(PRESET, cache_dir=folder, seed=3, progress=False)
    assert _audio_hashes(folder) == _audio_hashes(corpus.root)


def test_folder_of_another_corpus_or_foreign_files_is_refused(corpus, tmp_path):
    with pytest.raises(DataError, match="seed 3.*seed 4"):
        build_corpus(PRESET, cache_dir=corpus.root, seed=4, progress=False)
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(DataError, match="not empty"):
        build_corpus(PRESET, cache_dir=tmp_path, seed=3, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "user data"


def test_bad_preset_and_seed():
    with pytest.raises(ConfigError, match="smoke"):
        build_corpus("huge", cache_dir=Path("/nonexistent"))
    with pytest.raises(ConfigError, match="seed"):
        build_corpus(PRESET, cache_dir=Path("/nonexistent"), seed=-1)
    with pytest.raises(ConfigError, match="test"):
        CorpusPreset("x", train=1, dev=1, test=0)


def test_presets_have_the_promised_sizes():
    smoke, full = PRESETS["smoke"], PRESETS["full"]
    assert 300 <= smoke.train + smoke.dev + smoke.test <= 500
    assert full.train * (1.616 - 3 * 0.015 + 0.35) / 3600 >= 50  # measured mean speech +- 3 s.e. + padding


def test_cli_builds_and_reports(tmp_path, capsys):
    from edgetune.cli import main

    rc = main(["corpus", "--preset", "tiny", "--out", str(tmp_path / "c"), "--no-progress", "--workers", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"train +48 utterances", out) and re.search(r"test +12 utterances", out)
    assert (tmp_path / "c" / "train.jsonl").is_file()
    # the same folder for another preset: exit code 2 and a message naming the folder and the fix
    rc = main(["corpus", "--preset", "smoke", "--out", str(tmp_path / "c"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and str(tmp_path / "c") in err and "use another folder" in err


def test_default_folder_is_under_edgetune_cache(tmp_path, monkeypatch):
    from edgetune.data import load_dataset

    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path))
    splits = load_dataset("tiny", seed=2, progress=False)
    assert splits.name == "tiny" and splits.root == tmp_path / "corpus" / "tiny-seed2"
    assert [len(splits.split(s)) for s in SPLITS] == [48, 12, 12]
    assert json.loads((splits.root / MARKER).read_text())["complete"] is True


def test_worker_failure_names_the_shard_and_the_cause(tmp_path):
    from dataclasses import replace

    from edgetune.data._corpus import _ShardRunner

    job = replace(plan_corpus(PRESET, 3)["dev"][0], variant="no-such-variant")
    (tmp_path / "wav" / "dev").mkdir(parents=True)
    with pytest.raises(DataError, match=r"(?s)shard dev-00000 .*failed.*has no voice 'en[-a-z0-9]*\+no-such-variant'"):
        _ShardRunner(tmp_path, lambda: None).run("dev-00000", [job])
    assert not (tmp_path / "shards").exists()  # no record: the shard counts as not done


def test_parallel_builds_of_one_folder_agree(corpus, tmp_path):
    folder = tmp_path / "shared"
    code = ("import sys; from edgetune.data import CorpusPreset, build_corpus; "
            "build_corpus(CorpusPreset('unit', train=16, dev=6, test=8, shard_size=8), "
            "cache_dir=sys.argv[1], seed=3, progress=False, workers=1)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=Path(__file__).parents[1])
             for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert _audio_hashes(folder) == _audio_hashes(corpus.root)
    assert json.loads((folder / MARKER).read_text())["complete"] is True
