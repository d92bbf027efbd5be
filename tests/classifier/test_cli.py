from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from relayguard.app.cli import cli
from relayguard.classifier.exchange import decode

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "corpus"


def run(tmp_path: Path, *args: str) -> str:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{tmp_path.as_posix()}"\n[classifier]\nstarter = false\n')
    r = CliRunner().invoke(cli, ["learn", "--config", str(cfg), "--no-progress", *args])
    assert r.exit_code == 0, r.output
    return r.output


def test_learn_is_idempotent_relabels_and_forgets(tmp_path: Path) -> None:
    spam_dir, ham_dir = SAMPLES / "spam", SAMPLES / "ham"
    n_spam = len(list(spam_dir.iterdir()))
    n_ham = len(list(ham_dir.iterdir()))
    out = run(tmp_path, "--spam", str(spam_dir), "--ham", str(ham_dir))
    assert f"{n_spam + n_ham} learned" in out
    assert f"knows {n_spam} spam and {n_ham} ham" in out
    out = run(tmp_path, "--spam", str(spam_dir))
    assert f"{n_spam} unchanged" in out and f"knows {n_spam} spam" in out
    one = sorted(ham_dir.iterdir())[0]
    out = run(tmp_path, "--spam", str(one))
    assert "1 relabelled" in out and f"knows {n_spam + 1} spam and {n_ham - 1} ham" in out
    out = run(tmp_path, "--forget", str(one))
    assert "1 forgotten" in out and f"knows {n_spam} spam and {n_ham - 1} ham" in out
    model = tmp_path / "m.model"
    run(tmp_path, "--export", str(model))
    d = decode(model.read_bytes())
    assert (d.info.n_spam, d.info.n_ham) == (n_spam, n_ham - 1)
    assert len(d.records) == n_spam + n_ham - 1


def test_import_replaces_the_model(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    run(a, "--spam", str(SAMPLES / "spam"), "--export", str(tmp_path / "m.model"))
    out = run(b, "--import", str(tmp_path / "m.model"))
    assert "knows 118 spam and 0 ham" in out or "spam and 0 ham" in out
