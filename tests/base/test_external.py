"""The one runner: argv only, raw output kept, typed errors, process-group kill, prompt tables."""

from __future__ import annotations

import logging
import os
import pickle
import signal
import stat
import sys
import textwrap
import time

import pytest

from semc.base.errors import (
    ExternalProgramFailed,
    ExternalProgramTimeout,
    InputMissing,
    InvalidParameters,
    LogParseError,
)
from semc.base.external import PromptAnswer, PromptTable, run, run_interactive


def script(tmp_path, name: str, body: str) -> str:
    """An executable Python script in tmp_path."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_run_returns_output_and_keeps_it_in_the_log_with_the_argv(tmp_path, caplog):
    prog = script(tmp_path, "echoer", """
        import sys, os
        print("out", *sys.argv[1:]); print("cwd", os.getcwd()); print("err line", file=sys.stderr)
    """)
    log = tmp_path / "logs" / "123.echoer.log"
    with caplog.at_level(logging.DEBUG, logger="semc.base.external"):
        done = run([prog, "-Bft", "500", "100", "a b"], cwd=tmp_path, timeout_s=30, log_path=log,
                   exposure_id=123, step="motioncorrection", version="9.9")
    assert done.stdout.splitlines()[0] == "out -Bft 500 100 a b"
    assert done.stderr.strip() == "err line"
    assert done.returncode == 0 and done.program == "echoer" and done.version == "9.9"
    text = log.read_text()
    assert "out -Bft 500 100 a b" in text and "err line" in text and "-Bft 500 100 'a b'" in text
    assert f"cwd {tmp_path}" in done.stdout
    assert any("-Bft 500 100 'a b'" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


def test_a_shell_string_is_refused(tmp_path):
    with pytest.raises(InvalidParameters, match="never a shell string"):
        run("echo hi; rm -rf /", cwd=tmp_path, timeout_s=5, log_path=tmp_path / "x.log")


def test_environment_is_laid_over_the_process_environment(tmp_path):
    prog = script(tmp_path, "env", "import os; print(os.environ['SEMC_T1'], os.environ['PATH'] != '')")
    done = run([prog], cwd=tmp_path, timeout_s=30, log_path=tmp_path / "e.log", env={"SEMC_T1": "v1"})
    assert done.stdout.split() == ["v1", "True"]


def test_a_missing_executable_names_the_program_version_and_path(tmp_path):
    with pytest.raises(InputMissing) as info:
        run(["motioncor2-does-not-exist", "-InMrc", "x"], cwd=tmp_path, timeout_s=5,
            log_path=tmp_path / "m.log", env={"PATH": str(tmp_path)}, exposure_id=7, step="motioncorrection",
            program="motioncor2", version="1.6.4")
    msg = str(info.value)
    assert "motioncor2" in msg and "1.6.4" in msg and f"PATH={tmp_path}" in msg and "exposure=7" in msg


def test_a_nonzero_exit_carries_code_argv_exposure_and_stderr_tail_and_keeps_the_log(tmp_path):
    prog = script(tmp_path, "failer", """
        import sys
        print("partial output")
        for i in range(40): print(f"err {i}", file=sys.stderr)
        sys.exit(3)
    """)
    log = tmp_path / "f.log"
    with pytest.raises(ExternalProgramFailed) as info:
        run([prog, "-x"], cwd=tmp_path, timeout_s=30, log_path=log, exposure_id=42, step="ctfestimation",
            program="ctffind", version="4.1.14")
    e = info.value
    assert type(e) is ExternalProgramFailed
    assert (e.returncode, e.signal, e.argv, e.exposure_id, e.program, e.version) == \
        (3, None, [prog, "-x"], 42, "ctffind", "4.1.14")
    assert e.stderr_tail.splitlines()[-1] == "err 39" and "err 0\n" not in e.stderr_tail
    assert e.log_path == str(log) and "partial output" in log.read_text() and "err 0" in log.read_text()
    assert pickle.loads(pickle.dumps(e)) == e


def test_a_crash_by_signal_is_reported_as_the_signal(tmp_path):
    prog = script(tmp_path, "crasher", """
        import os, signal, sys
        print("about to crash", flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    """)
    with pytest.raises(ExternalProgramFailed) as info:
        run([prog], cwd=tmp_path, timeout_s=30, log_path=tmp_path / "c.log", exposure_id=5)
    assert info.value.signal == signal.SIGSEGV and info.value.returncode is None
    assert "SIGSEGV" in str(info.value) and "about to crash" in (tmp_path / "c.log").read_text()


def test_a_hang_past_the_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    prog = script(tmp_path, "hanger", f"""
        import subprocess, sys, time, signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the leader ignores TERM: only KILL ends it
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        print("started", flush=True)
        time.sleep(600)
    """)
    t0 = time.monotonic()
    with pytest.raises(ExternalProgramTimeout) as info:
        run([prog], cwd=tmp_path, timeout_s=1.5, log_path=tmp_path / "h.log", exposure_id=9, program="hanger")
    assert time.monotonic() - t0 < 20
    assert info.value.exposure_id == 9 and "1.5 s" in str(info.value)
    child_pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child_pid), "the grandchild survived the timeout"
    assert "started" in (tmp_path / "h.log").read_text()


def test_errors_of_the_runner_pickle_for_dask(tmp_path):
    with pytest.raises(ExternalProgramTimeout) as info:
        run([sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path, timeout_s=0.5,
            log_path=tmp_path / "p.log")
    assert pickle.loads(pickle.dumps(info.value)) == info.value


ASKER = """
    import sys
    def ask(q):
        sys.stdout.write(q + " [default] : "); sys.stdout.flush()
        return sys.stdin.readline().strip()
    answers = []
    for q in {questions!r}:
        answers.append(ask(q))
    print("ANSWERS", "|".join(answers)); sys.stdout.flush()
"""


def asker(tmp_path, questions) -> str:
    return script(tmp_path, "asker", ASKER.format(questions=list(questions)))


TABLE = PromptTable((
    PromptAnswer(("Input image file name",), "mic.mrc"),
    PromptAnswer(("Input is a movie",), "no", optional=True),
    PromptAnswer(("Pixel size",), "1.0"),
    PromptAnswer(("Determine samnple thickness?",), "no"),
))


def test_interactive_program_is_answered_from_the_table_and_optional_questions_may_be_absent(tmp_path):
    prog = asker(tmp_path, ["Input image file name", "Pixel size", "Determine samnple thickness?"])
    done = run_interactive([prog], answers=TABLE, cwd=tmp_path, timeout_s=30, log_path=tmp_path / "i.log",
                           prompt_timeout_s=5)
    assert "ANSWERS mic.mrc|1.0|no" in done.stdout
    assert "ANSWERS mic.mrc|1.0|no" in (tmp_path / "i.log").read_text()


def test_an_unexpected_question_fails_clearly_and_fast(tmp_path):
    prog = asker(tmp_path, ["Input image file name", "Favourite colour?", "Pixel size"])
    t0 = time.monotonic()
    with pytest.raises(LogParseError, match="unexpected question.*Favourite colour") as info:
        run_interactive([prog], answers=TABLE, cwd=tmp_path, timeout_s=60, log_path=tmp_path / "u.log",
                        prompt_timeout_s=1.0, exposure_id=3, program="ctffind", version="5.0.2")
    assert time.monotonic() - t0 < 15
    assert info.value.exposure_id == 3 and info.value.version == "5.0.2"


def test_a_required_question_the_program_skips_is_reported_missing(tmp_path):
    prog = asker(tmp_path, ["Input image file name", "Determine samnple thickness?"])
    with pytest.raises(LogParseError, match=r"did not ask \['Pixel size'\]"):
        run_interactive([prog], answers=TABLE, cwd=tmp_path, timeout_s=30, log_path=tmp_path / "s.log",
                        prompt_timeout_s=5)


def test_a_program_that_ends_before_the_last_question_is_reported(tmp_path):
    prog = asker(tmp_path, ["Input image file name", "Pixel size"])
    with pytest.raises(LogParseError, match="ended before asking 'Determine samnple thickness"):
        run_interactive([prog], answers=TABLE, cwd=tmp_path, timeout_s=30, log_path=tmp_path / "e.log",
                        prompt_timeout_s=5)


def test_an_interactive_program_failing_after_the_answers_carries_its_exit_code(tmp_path):
    prog = script(tmp_path, "asker_fail", """
        import sys
        sys.stdout.write("Pixel size : "); sys.stdout.flush(); sys.stdin.readline()
        print("Error: cannot open file"); sys.stdout.flush(); sys.exit(2)
    """)
    table = PromptTable((PromptAnswer(("Pixel size",), "1.0"),))
    with pytest.raises(ExternalProgramFailed) as info:
        run_interactive([prog], answers=table, cwd=tmp_path, timeout_s=30, log_path=tmp_path / "f.log")
    assert info.value.returncode == 2 and "cannot open file" in info.value.stderr_tail


def test_prompt_table_entries_are_validated():
    with pytest.raises(InvalidParameters):
        PromptAnswer("Pixel size", "1.0")  # a bare string is not a tuple of prompts
    with pytest.raises(InvalidParameters):
        PromptAnswer(("Pixel size",), "1.0\nyes")


def test_an_interactive_program_hanging_after_its_answers_is_killed_with_its_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    prog = script(tmp_path, "asker_hang", f"""
        import subprocess, sys, time
        sys.stdout.write("Pixel size : "); sys.stdout.flush(); sys.stdin.readline()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        print("computing", flush=True)
        time.sleep(600)
    """)
    table = PromptTable((PromptAnswer(("Pixel size",), "1.0"),))
    with pytest.raises(ExternalProgramTimeout) as info:
        run_interactive([prog], answers=table, cwd=tmp_path, timeout_s=3, log_path=tmp_path / "t.log",
                        exposure_id=11, program="ctffind", version="4.1.14")
    assert info.value.exposure_id == 11 and "computing" in (tmp_path / "t.log").read_text()
    child_pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child_pid), "the grandchild survived the timeout"


def test_a_program_that_cannot_start_is_an_external_failure_not_an_oserror(tmp_path):
    prog = tmp_path / "no_shebang"
    prog.write_text("this is not a program\n")
    prog.chmod(0o755)
    with pytest.raises(ExternalProgramFailed, match="could not be started"):
        run([str(prog)], cwd=tmp_path, timeout_s=5, log_path=tmp_path / "n.log", exposure_id=1)
    with pytest.raises(ExternalProgramFailed, match="could not be started"):
        run([sys.executable, "-c", "pass"], cwd=tmp_path / "absent", timeout_s=5, log_path=tmp_path / "a.log")
    with pytest.raises(ExternalProgramFailed, match="could not be started"):
        run_interactive([sys.executable, "-c", "pass"], answers=TABLE, cwd=tmp_path / "absent", timeout_s=5,
                        log_path=tmp_path / "b.log")


def test_an_interactive_program_dying_mid_dialog_is_a_crash_not_a_short_dialog(tmp_path):
    prog = script(tmp_path, "asker_crash", """
        import os, signal, sys
        sys.stdout.write("Input image file name : "); sys.stdout.flush(); sys.stdin.readline()
        print("Segmentation fault ahead"); sys.stdout.flush(); os.kill(os.getpid(), signal.SIGSEGV)
    """)
    with pytest.raises(ExternalProgramFailed) as info:
        run_interactive([prog], answers=TABLE, cwd=tmp_path, timeout_s=30, log_path=tmp_path / "c.log",
                        prompt_timeout_s=5, exposure_id=8, program="ctffind4", version="4.1.14")
    assert info.value.signal == 11 and info.value.exposure_id == 8 and info.value.version == "4.1.14"
    assert "Segmentation fault ahead" in (tmp_path / "c.log").read_text()
