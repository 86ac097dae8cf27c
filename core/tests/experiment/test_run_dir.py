"""Run directories: fresh names, newest-run lookup, the training log and the report."""

from __future__ import annotations

from flowforge.experiment import RunDir


def test_create_never_reuses_a_directory(tmp_path):
    runs = [RunDir.create(tmp_path, "exp") for _ in range(3)]
    assert len({r.root for r in runs}) == 3
    assert all(r.root.parent == tmp_path / "exp" and r.root.is_dir() for r in runs)


def test_newest_orders_by_time_then_counter_and_needs_a_spec(tmp_path):
    for name in ("20250101-120000", "20250101-120000-2", "20250101-120000-10", "20240101-000000"):
        (tmp_path / "exp" / name).mkdir(parents=True)
        (tmp_path / "exp" / name / "spec.yaml").write_text("name: exp\n")
    (tmp_path / "exp" / "20991231-000000").mkdir()  # no spec: not a run
    assert RunDir.newest(tmp_path, "exp").root.name == "20250101-120000-10"
    assert RunDir.newest(tmp_path, "other") is None


def test_log_truncation_and_torn_lines(tmp_path):
    run = RunDir.create(tmp_path, "exp")
    for step in (5, 10, 15):
        run.append_log({"step": step, "loss": 1.0 / step})
    with run.log_path.open("a") as fh:
        fh.write('{"step": 20, "lo')  # killed mid-write
    assert [r["step"] for r in run.read_log()] == [5, 10, 15]
    run.truncate_log(10)
    assert [r["step"] for r in run.read_log()] == [5, 10]
    run.append_log({"step": 11, "loss": float("nan")})
    assert run.read_log()[-1] == {"step": 11, "loss": None}
