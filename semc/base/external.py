"""The one runner of external programs (style convention 4).

Every program SEMC starts (MotionCor2/3, CTFFIND4/5, Gctf, ``semc-motioncor2``,
``semc-ctffind``) goes through `run` (plain command line) or `run_interactive`
(a program that asks questions on its terminal, fed from a `PromptTable`).

What both do, always:

* take an argument list, never a shell string;
* log the argv at DEBUG;
* start the program in its own session (process group), so that a timeout
  kills the program *and everything it started* (``os.killpg``);
* keep the raw output on disk in ``log_path`` (next to the outputs, one file
  per exposure): a few ``# semc:`` header lines (argv, cwd, program, version),
  the program's stdout verbatim, then its stderr and its exit status;
* raise typed errors from `semc.base.errors`:

  - `InputMissing` when the executable is not found (naming the program and
    the PATH searched);
  - `ExternalProgramFailed` on a non-zero exit or death by a signal, carrying
    program, version, exit code or signal, argv, exposure id, the tail of the
    error output and the log path;
  - `ExternalProgramTimeout` past ``timeout_s`` (after the process group was
    killed);
  - `LogParseError` from `run_interactive` when the program asks a question
    the table does not know, or skips one the table requires.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from semc.base.errors import (
    ExternalProgramFailed,
    ExternalProgramTimeout,
    InputMissing,
    InvalidParameters,
    LogParseError,
)

logger = logging.getLogger(__name__)

__all__ = ["CompletedRun", "PromptAnswer", "PromptTable", "run", "run_interactive", "which"]

#: lines of error output carried by an `ExternalProgramFailed`
TAIL_LINES = 25
#: seconds between SIGTERM and SIGKILL of a timed-out process group
KILL_GRACE_S = 2.0


@dataclass(frozen=True, slots=True)
class CompletedRun:
    """A program that ran to a zero exit status.

    Attributes
    ----------
    argv
        The argument list as run (``argv[0]`` as given, not resolved).
    executable
        The resolved path of ``argv[0]``.
    program, version
        Program label and version (for messages and the run record).
    returncode
        Always 0 (non-zero raises).
    stdout, stderr
        The program's output, decoded as UTF-8 with replacement. For
        `run_interactive` everything is in ``stdout`` (one terminal).
    log_path
        Where the raw output was kept.
    duration_s
        Wall time, seconds.
    """

    argv: tuple[str, ...]
    executable: str
    program: str
    version: str | None
    returncode: int
    stdout: str
    stderr: str
    log_path: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class PromptAnswer:
    """One question of an interactive program and the answer to type.

    Attributes
    ----------
    prompts
        Literal texts (not regular expressions) that identify the question;
        any one of them matches (programs reword prompts between versions).
    answer
        The line to send (without the newline).
    optional
        True when the program asks this only in some cases (e.g. CTFFIND's
        "Input is a movie" for stacks): it may be skipped without error.
    """

    prompts: tuple[str, ...]
    answer: str
    optional: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.prompts, str) or not self.prompts or not all(p.strip() for p in self.prompts):
            raise InvalidParameters(f"prompts must be a non-empty tuple of non-blank texts, got {self.prompts!r}")
        if "\n" in self.answer or "\r" in self.answer:
            raise InvalidParameters(f"an answer is one line, got {self.answer!r}")

    @property
    def label(self) -> str:
        """The first prompt text (for messages)."""
        return self.prompts[0]


@dataclass(frozen=True, slots=True)
class PromptTable:
    """The ordered questions of an interactive program and their answers (data, not code).

    Attributes
    ----------
    entries
        In the order the program asks them.
    trailing_lines
        Extra lines sent after the last answer (classic Appion sends one
        empty line after CTFFIND's last question).
    """

    entries: tuple[PromptAnswer, ...]
    trailing_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.entries:
            raise InvalidParameters("a prompt table needs at least one entry")

    def answers(self) -> list[str]:
        """All answers in order (what a blind feeder would send)."""
        return [e.answer for e in self.entries]


def which(name: str, *, env: Mapping[str, str] | None = None) -> str | None:
    """Resolve an executable like the runner does (``PATH`` from ``env`` laid over os.environ)."""
    path_var = _environment(env).get("PATH", os.defpath)
    if os.sep in name:
        return name if os.access(name, os.X_OK) and os.path.isfile(name) else None
    return shutil.which(name, path=path_var)


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(os.environ)
    if env:
        merged.update({str(k): str(v) for k, v in env.items()})
    return merged


@dataclass(frozen=True, slots=True)
class _Ctx:
    argv: tuple[str, ...]
    program: str
    version: str | None
    step: str | None
    exposure_id: int | None
    log_path: str

    def fail(self, cls, message: str, *, returncode=None, sig=None, tail: str = ""):
        """Build an error of ``cls`` with every piece of context that class carries."""
        extra = {"program": self.program, "version": self.version, "argv": list(self.argv),
                 "returncode": returncode, "signal": sig, "stderr_tail": tail or None, "log_path": self.log_path}
        kept = {k: v for k, v in extra.items() if k in cls._extra}
        if "stderr_tail" not in kept and tail:
            message = f"{message}\n--- last lines of its output ---\n{tail}"
        return cls(message, step=self.step, exposure_id=self.exposure_id, path=self.log_path, **kept)


def _prepare(argv: Sequence[str], *, log_path, env, exposure_id, step, program, version) -> tuple[_Ctx, str]:
    if isinstance(argv, (str, bytes)) or not argv or not all(isinstance(a, str) for a in argv):
        raise InvalidParameters(f"argv must be a non-empty list of str (never a shell string), got {argv!r}",
                                step=step, exposure_id=exposure_id)
    ctx = _Ctx(tuple(argv), program or os.path.basename(argv[0]), version, step, exposure_id, str(log_path))
    executable = which(argv[0], env=env)
    if executable is None:
        path_var = _environment(env).get("PATH", os.defpath)
        where = "as given" if os.sep in argv[0] else f"on PATH={path_var}"
        raise InputMissing(f"program {ctx.program} (version {version or 'unknown'}): executable {argv[0]!r} "
                           f"not found {where}", step=step, exposure_id=exposure_id, path=argv[0])
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    logger.debug("exposure=%s step=%s run %s: %s", exposure_id, step, ctx.program, shlex.join(argv))
    return ctx, executable


def _header(ctx: _Ctx, cwd) -> str:
    return (f"# semc: program {ctx.program} version {ctx.version or 'unknown'} exposure {ctx.exposure_id}\n"
            f"# semc: cwd {cwd}\n# semc: argv {shlex.join(ctx.argv)}\n")


def _tail(text: str, n: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-n:])


def _kill_group(pgid: int) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after a grace period."""
    for sig, pause in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def _decode(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def run(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    timeout_s: float,
    log_path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    exposure_id: int | None = None,
    step: str | None = None,
    program: str | None = None,
    version: str | None = None,
) -> CompletedRun:
    """Run one program to completion, keeping its output in ``log_path``.

    Parameters
    ----------
    argv
        The argument list; ``argv[0]`` is a name looked up on PATH or a path.
    cwd
        Working directory of the program.
    timeout_s
        Wall-clock limit, seconds; past it the whole process group is killed.
    log_path
        The per-exposure log file (created with its folder; overwritten).
    env
        Variables laid over ``os.environ`` for this call only.
    exposure_id, step, program, version
        Context carried into the log header and every error. ``program``
        defaults to the basename of ``argv[0]``.

    Returns
    -------
    CompletedRun

    Raises
    ------
    InvalidParameters
        ``argv`` is not a non-empty list of strings.
    InputMissing
        The executable is not found.
    ExternalProgramFailed
        Non-zero exit or death by a signal.
    ExternalProgramTimeout
        Ran past ``timeout_s`` (the process group was killed).
    """
    ctx, executable = _prepare(argv, log_path=log_path, env=env, exposure_id=exposure_id, step=step,
                               program=program, version=version)
    if not timeout_s > 0:
        raise InvalidParameters(f"timeout_s must be > 0, got {timeout_s}", step=step, exposure_id=exposure_id)
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen([executable, *ctx.argv[1:]], cwd=cwd, env=_environment(env),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as exc:
        raise ctx.fail(ExternalProgramFailed, f"{ctx.program} could not be started in {cwd}: {exc}") from exc
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a descendant escaped the group and holds the pipes
            proc.kill()
            out, err = b"", b""
    duration = time.monotonic() - t0
    stdout, stderr = _decode(out), _decode(err)
    status = "timed out" if timed_out else f"exit status {proc.returncode}"
    with open(log_path, "w", encoding="utf-8") as fh:
        fh.write(_header(ctx, cwd) + stdout)
        fh.write(f"\n# semc: --- stderr ---\n{stderr}\n# semc: {status} after {duration:.3f} s\n")
    tail = _tail(stderr) or _tail(stdout)
    if timed_out:
        raise ctx.fail(ExternalProgramTimeout, f"{ctx.program} ran past its {timeout_s:g} s limit and was "
                       "killed with its process group", tail=tail)
    if proc.returncode != 0:
        rc = proc.returncode
        if rc < 0:
            raise ctx.fail(ExternalProgramFailed, f"{ctx.program} was killed by signal {-rc} "
                           f"({signal.Signals(-rc).name})", sig=-rc, tail=tail)
        raise ctx.fail(ExternalProgramFailed, f"{ctx.program} exited with status {rc}", returncode=rc, tail=tail)
    return CompletedRun(ctx.argv, executable, ctx.program, version, 0, stdout, stderr, str(log_path), duration)


def _prompt_regex(entry: PromptAnswer) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(p) for p in entry.prompts))


def _feed(child, table: PromptTable, ctx: _Ctx, *, deadline: float, prompt_timeout_s: float) -> None:
    """Answer the table's questions in order; raise on an unknown or a skipped required one."""
    import pexpect

    entries = table.entries
    i = 0
    while i < len(entries):
        patterns = [_prompt_regex(e) for e in entries[i:]] + [pexpect.EOF, pexpect.TIMEOUT]
        wait = max(0.01, min(prompt_timeout_s, deadline - time.monotonic()))
        k = child.expect(patterns, timeout=wait)
        n_left = len(entries) - i
        if k == n_left:  # EOF: a crash or an error exit mid-dialog, else a dialog shorter than the table
            child.wait()
            _status_check(ctx, child.exitstatus, child.signalstatus, _tail(child.before or ""))
            raise ctx.fail(LogParseError, f"{ctx.program} ended before asking {entries[i].label!r}",
                           tail=_tail(child.before or ""))
        if k == n_left + 1:  # nothing we know was asked in time
            pending = _tail(child.before or "", 3)
            if time.monotonic() >= deadline:
                raise ctx.fail(ExternalProgramTimeout, f"{ctx.program} ran past its limit waiting for "
                               f"{entries[i].label!r}", tail=pending)
            raise ctx.fail(LogParseError, f"{ctx.program} asked an unexpected question (expected "
                           f"{entries[i].label!r}); last output: {pending!r}", tail=pending)
        skipped = [e.label for e in entries[i:i + k] if not e.optional]
        if skipped:
            raise ctx.fail(LogParseError, f"{ctx.program} did not ask {skipped} before "
                           f"{entries[i + k].label!r}", tail=_tail(child.before or ""))
        child.sendline(entries[i + k].answer)
        i += k + 1
    for line in table.trailing_lines:
        child.sendline(line)


def run_interactive(
    argv: Sequence[str],
    *,
    answers: PromptTable,
    cwd: str | os.PathLike[str],
    timeout_s: float,
    log_path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    exposure_id: int | None = None,
    step: str | None = None,
    program: str | None = None,
    version: str | None = None,
    prompt_timeout_s: float = 60.0,
) -> CompletedRun:
    """Run a program that asks questions on its terminal, answering from ``answers``.

    The program runs on a pseudo-terminal (``pexpect``) in its own session.
    Questions must come in the table's order; optional entries may be skipped.
    After the last answer the program must exit within ``timeout_s`` (counted
    from the start).

    Parameters
    ----------
    argv, cwd, timeout_s, log_path, env, exposure_id, step, program, version
        As for `run`.
    answers
        The prompt→answer table (see `PromptTable`).
    prompt_timeout_s
        How long to wait for the next known question before concluding that
        the program is waiting at a question the table does not know.

    Returns
    -------
    CompletedRun
        ``stdout`` holds the whole terminal transcript (prompts included).

    Raises
    ------
    LogParseError
        An unexpected question, or the program skipped or never reached a
        required one.
    InputMissing, ExternalProgramFailed, ExternalProgramTimeout
        As for `run`.
    """
    import pexpect

    ctx, executable = _prepare(argv, log_path=log_path, env=env, exposure_id=exposure_id, step=step,
                               program=program, version=version)
    if not os.path.isdir(cwd):
        raise ctx.fail(ExternalProgramFailed, f"{ctx.program} could not be started: no directory {cwd}")
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    with open(log_path, "w", encoding="utf-8") as fh:
        fh.write(_header(ctx, cwd))
        fh.flush()
        child = pexpect.spawn(executable, list(ctx.argv[1:]), cwd=str(cwd), env=_environment(env),
                              encoding="utf-8", codec_errors="replace", echo=False, timeout=timeout_s)
        child.logfile_read = fh
        child.delaybeforesend = None  # pexpect's 50 ms per answer guards against echo races we do not have
        try:
            _feed(child, answers, ctx, deadline=deadline, prompt_timeout_s=prompt_timeout_s)
            if child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=max(0.01, deadline - time.monotonic())):
                raise ctx.fail(ExternalProgramTimeout, f"{ctx.program} ran past its {timeout_s:g} s limit "
                               "and was killed with its process group", tail=_tail(child.before or ""))
        except BaseException:
            _kill_group(child.pid)
            child.close(force=True)
            raise
        finally:
            child.logfile_read = None
        child.wait()  # reaped here, so close() has nothing to wait for or to kill
        child.delayafterclose = 0.0
        child.close()
        transcript = _read_transcript(log_path, fh)
        status = child.exitstatus, child.signalstatus
        fh.write(f"\n# semc: exit status {status[0]} signal {status[1]} after {time.monotonic() - t0:.3f} s\n")
    _status_check(ctx, status[0], status[1], _tail(transcript))
    return CompletedRun(ctx.argv, executable, ctx.program, version, 0, transcript, "", str(log_path),
                        time.monotonic() - t0)


def _status_check(ctx: _Ctx, exitstatus: int | None, signalstatus: int | None, tail: str) -> None:
    """Raise `ExternalProgramFailed` for an interactive program killed by a signal or exiting non-zero."""
    if signalstatus is not None:
        raise ctx.fail(ExternalProgramFailed, f"{ctx.program} was killed by signal {signalstatus}",
                       sig=signalstatus, tail=tail)
    if exitstatus not in (0, None):
        raise ctx.fail(ExternalProgramFailed, f"{ctx.program} exited with status {exitstatus}",
                       returncode=exitstatus, tail=tail)


def _read_transcript(log_path, fh) -> str:
    fh.flush()
    text = Path(log_path).read_text(encoding="utf-8", errors="replace")
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("# semc: "))
