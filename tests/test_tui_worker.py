"""The process runner the TUI uses for analysis: results, progress, errors and cancellation in a real child."""
from __future__ import annotations

import signal
import threading

import pytest
from tui_fixtures import model_file

from embodied_tui.errors import AnalysisError, NotFound
from embodied_tui.services.worker import Cancelled, ProcessJob


def test_result_and_progress_from_a_real_analysis(tmp_path):
    from embodied_tui.analysis.api import analyze_file

    path = model_file(tmp_path, "mlp_policy", "pt2")
    reports = []
    job = ProcessJob("embodied_tui.analysis.api:analyze_file", (str(path),))
    analysis = job.run(on_progress=lambda args, kwargs: reports.append(tuple(args)))
    assert analysis == analyze_file(path).model_copy(update={"analysis_seconds": analysis.analysis_seconds})
    fractions = [fraction for _, fraction in reports]
    assert reports[0][0] == "detecting format" and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert job.exitcode == 0


def test_user_errors_keep_their_type_and_other_errors_become_one_line(tmp_path):
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("hello")
    with pytest.raises(AnalysisError) as err:
        ProcessJob("embodied_tui.analysis.api:analyze_file", (str(not_a_model),)).run()
    assert str(not_a_model) in str(err.value)
    with pytest.raises(NotFound):  # a UserError subclass comes back as itself
        ProcessJob("embodied_tui.services.models:show", ("nope",), {"db": str(tmp_path / "r.json")},
                   progress_kw=None).run()
    with pytest.raises(AnalysisError, match="FileNotFoundError"):
        ProcessJob("os.path:getsize", (str(tmp_path / "missing"),), progress_kw=None).run()


def test_cancel_terminates_the_child():
    job = ProcessJob("time:sleep", (60,), progress_kw=None)
    outcome = {}

    def run():
        try:
            job.run()
        except Cancelled:
            outcome["cancelled"] = True

    thread = threading.Thread(target=run)
    thread.start()
    assert job.started.wait(30)
    assert job.is_alive()
    job.cancel()
    thread.join(30)
    assert outcome == {"cancelled": True}
    assert not job.is_alive() and job.exitcode == -signal.SIGTERM


def test_cancel_before_start_never_starts_a_process():
    job = ProcessJob("time:sleep", (60,), progress_kw=None)
    job.cancel()
    with pytest.raises(Cancelled):
        job.run()
    assert job.pid is None
