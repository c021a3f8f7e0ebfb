"""The `batch` command against the loopback FakeProvider: order, failures, resume, embeddings."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rig_sync._batch_cli import run
from rig_sync.cli import main
from rig_sync.testing import FakeProvider, Fault


def results(path: Path) -> list[dict[str, object]]:
    """The results file's lines, without the fingerprints resume matches on (checked on their own)."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(isinstance(row.pop("job"), str) and isinstance(row.pop("item"), str) for row in rows)
    return rows


def args(fake: FakeProvider, *extra: str) -> list[str]:
    return ["--provider", "openai", "--base-url", fake.base_url, "--api-key", fake.api_key, "--workers", "4",
            "--no-progress", *extra]


def test_prompts_in_every_line_format_answered_in_order(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('"first"\n{"prompt": "second", "id": "b"}\n\n{"text": "third", "id": 3}\nplain fourth\n')
    out = tmp_path / "out.jsonl"
    with FakeProvider() as fake:
        code = run([str(prompts), *args(fake, "--model", "gpt-4o", "--out", str(out), "--preamble", "Be brief")])
        assert fake.last_request is not None and fake.last_request.json["messages"][0]["content"] == "Be brief"
    assert code == 0
    assert results(out) == [
        {"index": 0, "id": None, "ok": True, "result": "echo: first"},
        {"index": 1, "id": "b", "ok": True, "result": "echo: second"},
        {"index": 2, "id": 3, "ok": True, "result": "echo: third"},
        {"index": 3, "id": None, "ok": True, "result": "echo: plain fourth"},
    ]


def test_failures_are_recorded_and_only_they_rerun(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"q{i}\n" for i in range(20)))
    out = tmp_path / "out.jsonl"
    with FakeProvider() as fake:
        fake.inject(Fault.status(400), times=3)  # not retried: three items fail
        assert run([str(prompts), *args(fake, "--model", "m", "--out", str(out))]) == 1
        first = results(out)
        failed = [r["index"] for r in first if not r["ok"]]
        assert len(first) == 20 and len(failed) == 3
        assert all(r["error"]["type"] == "BadRequestError" for r in first if not r["ok"])  # type: ignore[index]
        assert "17 of 20 done, 3 failed" in capsys.readouterr().err
        fake.reset()
        assert run([str(prompts), *args(fake, "--model", "m", "--out", str(out))]) == 0
        again = Counter(r.json["messages"][-1]["content"] for r in fake.requests)
    assert again == Counter(f"q{i}" for i in failed)
    assert results(out) == [{"index": i, "id": None, "ok": True, "result": f"echo: q{i}"} for i in range(20)]


def test_resume_from_a_partial_out_file(tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\nc\n")
    out = tmp_path / "out.jsonl"
    with FakeProvider() as fake:
        assert run([str(prompts), *args(fake, "--model", "m", "--out", str(out))]) == 0
        lines = out.read_text().splitlines(keepends=True)
        kept = json.loads(lines[1])
        kept["result"] = "kept"
        out.write_text(json.dumps(kept) + "\n" + lines[2][:30])  # killed mid-line
        fake.reset()
        assert run([str(prompts), *args(fake, "--model", "m", "--out", str(out))]) == 0
        assert sorted(r.json["messages"][-1]["content"] for r in fake.requests) == ["a", "c"]
    assert [r["result"] for r in results(out)] == ["echo: a", "kept", "echo: c"]


def test_embed_texts_file(tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"text {i}\n" for i in range(50)))
    out = tmp_path / "vectors.jsonl"
    with FakeProvider() as fake:
        code = run(["embed", str(texts), *args(fake, "--model", "text-embedding-3-small", "--out", str(out))])
        assert fake.request_count == 1  # one chunk
    assert code == 0
    rows = results(out)
    assert [r["index"] for r in rows] == list(range(50)) and all(r["ok"] for r in rows)
    from rig_sync.testing._openai import embed_text

    assert rows[7]["result"] == pytest.approx(embed_text("text 7"))


def test_bad_input_and_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    with FakeProvider() as fake:
        assert run([str(bad), *args(fake, "--model", "m", "--out", str(tmp_path / "o"))]) == 2
        assert capsys.readouterr().err.startswith("rig-sync: error: " + f"{bad}:1: a JSON object needs")
        assert run([str(tmp_path / "missing"), *args(fake, "--model", "m", "--out", str(tmp_path / "o"))]) == 2
        assert capsys.readouterr().err.startswith(f"rig-sync: error: cannot read {tmp_path / 'missing'}: ")
        good = tmp_path / "good.txt"
        good.write_text("hi\n")
        assert run([str(good), "--provider", "nope", "--base-url", fake.base_url, "--model", "m",
                    "--out", str(tmp_path / "o")]) == 2
        assert capsys.readouterr().err.startswith("rig-sync: error: no provider named 'nope'")
        assert run(["a", "b", "c", *args(fake, "--model", "m", "--out", "x")]) == 2
        assert capsys.readouterr().err == ("rig-sync: error: batch takes FILE, `embed FILE`, `status JOB` or "
                                           "`fetch JOB`, not 'a b c'\n")
        with pytest.raises(SystemExit) as info:
            run([str(good), *args(fake, "--model", "m", "--out", "x"), "--workers", "0"])
        assert info.value.code == 2 and "--workers: must be at least 1, not 0" in capsys.readouterr().err
        assert fake.request_count == 0


def test_usage_reads_plainly(capsys: pytest.CaptureFixture[str]) -> None:
    usage = ("usage: rig-sync batch FILE --model PROVIDER:MODEL --out RESULTS [options]\n"
             "       rig-sync batch embed FILE --model PROVIDER:MODEL --out VECTORS [options]\n")
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    assert capsys.readouterr().out.startswith(usage)
    with pytest.raises(SystemExit) as info:
        main(["batch"])
    assert info.value.code == 2 and capsys.readouterr().err.startswith(usage)


def test_provider_prefix_in_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\n")
    out = tmp_path / "out.jsonl"
    with FakeProvider() as fake:
        key = ["--base-url", fake.base_url, "--api-key", fake.api_key, "--no-progress", "--out", str(out)]
        assert run([str(prompts), "--model", "openai:gpt-4o", *key]) == 0  # no --provider needed
        assert fake.last_request is not None and fake.last_request.json["model"] == "gpt-4o"
        assert run([str(prompts), "--model", "openai:gpt-4o", "--provider", "mistral", *key]) == 2
        assert capsys.readouterr().err.endswith("rig-sync: error: --provider mistral conflicts with --model "
                                                "'openai:gpt-4o'; name the provider once, e.g. --model openai:gpt-4o\n")
        assert fake.request_count == 1


def test_missing_key_names_the_option_and_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    texts = tmp_path / "t.txt"
    texts.write_text("a\n")
    assert run(["embed", str(texts), "--model", "openai:text-embedding-3-small", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == "rig-sync: error: no API key for openai: pass --api-key or set OPENAI_API_KEY\n"
    assert not (tmp_path / "o").exists()  # refused before the results file is started
