"""Run the ``rnngrad`` CLI on every broken/hostile corpus case (tests/corpus.py).

Every case must be refused cleanly: exit status 2, a short message on
stderr (no traceback) that names the file and says what is wrong, the input
left byte-for-byte unchanged, no file appearing or disappearing next to it,
and no payload executed.  With ``--format json`` the same error must come
back as ``{"error": {"message": ..., "hint": ...}}`` on stdout (``check``
reports a model it cannot read as that model's entry in ``errors``).

Most calls run in-process through ``rnngrad.cli.main`` (the command's own code
path without a 3 s torch import each).  Real subprocesses run the payload
cases (one at a time, so a payload that fires is pinned on its call), the
memory cases under ``RLIMIT_AS`` (a regression fails with a MemoryError
instead of taking the machine), the FIFO/device cases under a timeout (a
regression hangs one process, not the test run) and a sample per command.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpus  # noqa: E402
from inprocess import time_limit  # noqa: E402

TIMEOUT_S = 60
MAX_STDERR_LINES = 2

SPECS = corpus.case_specs()
COMMANDS = corpus.case_commands()


#: Set RNNGRAD_HOSTILE_FULL=1 to run --format json through every command, not
#: only the case's primary one (inspect for model files, bptt otherwise).
FULL = os.environ.get("RNNGRAD_HOSTILE_FULL", "") not in ("", "0")


#: Cases that also run through the installed command (a sample of the ordinary ones; the
#: payload, memory and device cases always do, see SUBPROCESS_CASES below).
SUBPROCESS_SAMPLE = {"empty_file", "text_named_safetensors", "directory", "missing_path",
                     "weights_nan", "huge_shape_sparse_file"}


def _invocations(fmt: str) -> list:
    out = []
    for name, kind in SPECS:
        cmds = COMMANDS[name]
        if fmt == "json" and not FULL:
            if name in corpus.PAYLOAD_CASES | corpus.MEMORY_CASES:
                continue  # their text runs prove the refusal; JSON errors are tested below
            cmds = cmds[:1]
        for index, cmd in enumerate(cmds):
            # the fast loop: each case's primary command, as text, one real process of the
            # sample; the memory classes (whole processes under RLIMIT_AS, seconds each), the
            # rest of the sample and JSON run in the full suite
            slow = (index or fmt == "json" or name in corpus.MEMORY_CASES
                    or name in SUBPROCESS_SAMPLE - {"empty_file"})
            marks = (pytest.mark.slow,) if slow else ()
            out.append(pytest.param((name, cmd, fmt), id=f"{kind}-{name}-{cmd}", marks=marks))
    return out


TEXT_INVOCATIONS = _invocations("text")
JSON_INVOCATIONS = _invocations("json")


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def rnngrad_executable() -> str | None:
    override = os.environ.get("RNNGRAD_EXE")
    if override:
        return override
    cand = pathlib.Path(sys.executable).parent / "rnngrad"
    if cand.is_file() and os.access(cand, os.X_OK):
        return str(cand)
    return shutil.which("rnngrad")


def fingerprint(path: pathlib.Path):
    """Content fingerprint: sha256 (head+tail only for sparse giants); FIFOs and
    devices by identity only (reading them would block or never end)."""
    if not os.path.lexists(path):
        return ("absent",)
    st = os.lstat(path)
    if os.path.isdir(path):
        return ("dir", st.st_mode, tuple(sorted(os.listdir(path))))
    target = os.stat(path) if os.path.exists(path) else st
    if not stat.S_ISREG(target.st_mode):
        return ("special", stat.S_IFMT(target.st_mode), target.st_ino, st.st_mode)
    h = hashlib.sha256()
    if not os.access(path, os.R_OK):
        return ("unreadable", st.st_size, st.st_mode, st.st_mtime_ns)
    with open(path, "rb") as f:
        if st.st_size <= 64 * 1024 * 1024:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:  # the sparse 320 GB file: hash both ends, keep size + mtime
            h.update(f.read(1 << 20))
            f.seek(st.st_size - (1 << 20))
            h.update(f.read(1 << 20))
    return ("file", st.st_size, st.st_mode, st.st_mtime_ns, h.hexdigest())


def listing(dest: pathlib.Path) -> list:
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))


@dataclasses.dataclass
class Result:
    argv: list
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    payload_fired: bool = False

    def describe(self) -> str:
        def tail(s, n=1500):
            return s if len(s) <= n else "..." + s[-n:]
        return (f"\n  argv: rnngrad {' '.join(repr(a) if (' ' in a or not a) else a for a in self.argv)}"
                f"\n  exit: {self.rc}{' (TIMED OUT)' if self.timed_out else ''} after {self.seconds:.1f}s"
                f"\n  stderr:\n{tail(self.stderr)}\n  stdout:\n{tail(self.stdout)}")


def run_in_process(argv: list, cwd: pathlib.Path) -> Result:
    """The CLI's own entry point in this process: the same code path as the command, without
    a 3 s torch import per call. An exception escaping main() is recorded as a traceback."""
    import contextlib
    import io
    import traceback

    from rnngrad.cli import main

    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    t0 = time.perf_counter()
    rc: int | None = None
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(argv))
                rc = 0
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # noqa: BLE001 - a crash is what this test looks for
                err.write(traceback.format_exc())
                rc = None
    finally:
        os.chdir(previous)
    return Result(argv, rc, out.getvalue(), err.getvalue(), time.perf_counter() - t0)


#: Set RNNGRAD_HOSTILE_SUBPROCESS=1 to run every call through the installed command; by
#: default only the payload cases (and a sample per command) do, the rest run in-process.
SUBPROCESS_ALL = os.environ.get("RNNGRAD_HOSTILE_SUBPROCESS", "") not in ("", "0")
#: Always in a subprocess: payloads (a pickle that runs must not run in the test
#: process), and what would allocate gigabytes or read /dev/zero forever on a
#: regression (under RLIMIT_AS there).
SUBPROCESS_CASES = corpus.PAYLOAD_CASES | corpus.MEMORY_CASES | corpus.DEVICE_CASES
#: In-process calls end with a traceback after this long (a FIFO left open).
IN_PROCESS_TIMEOUT_S = 30


def limited(command: list, limit: int = corpus.RLIMIT_AS_BYTES) -> list:
    """``command`` run with its address space capped at ``limit`` bytes: a small Python sets
    RLIMIT_AS and execs it (``preexec_fn`` is not safe in a threaded test run)."""
    code = ("import os, resource, sys; "
            f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit})); "
            "os.execv(sys.argv[1], sys.argv[1:])")
    return [sys.executable, "-c", code, *command]


def run_cli(exe: str, argv: list, cwd: pathlib.Path) -> Result:
    """The installed command in a subprocess, its address space capped, under a timeout."""
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    t0 = time.perf_counter()
    try:
        p = subprocess.run(limited([exe, *argv]), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        return Result(argv, None, (e.stdout or b"").decode(errors="replace"),
                      (e.stderr or b"").decode(errors="replace"),
                      time.perf_counter() - t0, timed_out=True)
    return Result(argv, p.returncode, p.stdout.decode(errors="replace"),
                  p.stderr.decode(errors="replace"), time.perf_counter() - t0)


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Corpus:
    dest: pathlib.Path
    cases: dict
    fingerprints: dict
    listing: list
    build_seconds: float


@pytest.fixture(scope="session")
def built_corpus(tmp_path_factory) -> Corpus:
    dest = tmp_path_factory.mktemp("hostile") / "files"
    t0 = time.perf_counter()
    cases = corpus.build_corpus(dest)
    dt = time.perf_counter() - t0
    return Corpus(
        dest=dest.resolve(),
        cases={c.name: c for c in cases},
        fingerprints={c.name: fingerprint(c.path) for c in cases},
        listing=listing(dest),
        build_seconds=dt,
    )


@pytest.fixture(scope="session")
def cli_results(request, built_corpus, tmp_path_factory) -> dict:
    """Run every CLI call the selected tests need, concurrently, once."""
    exe = rnngrad_executable()
    if exe is None:
        pytest.fail("the `rnngrad` command is not installed (pip install -e .)")
    wanted = []
    for item in request.session.items:
        cs = getattr(item, "callspec", None)
        if cs is not None and "inv" in cs.params and item.module.__name__ == __name__:
            inv = cs.params["inv"]
            if built_corpus.cases[inv[0]].skip is None:
                wanted.append(inv)
    cwd = tmp_path_factory.mktemp("cwd")
    jobs = int(os.environ.get("RNNGRAD_HOSTILE_JOBS", os.cpu_count() or 2))

    def one(inv, in_process=False):
        name, cmd, fmt = inv
        argv = built_corpus.cases[name].argv(cmd)
        if fmt == "json":
            argv = [*argv, "--format", "json"]
        if in_process:
            return inv, run_in_process(argv, cwd)
        return inv, run_cli(exe, argv, cwd)

    def by_subprocess(inv) -> bool:
        name, cmd, fmt = inv
        sample = name in SUBPROCESS_SAMPLE and cmd == COMMANDS[name][0] and fmt == "text"
        return SUBPROCESS_ALL or name in SUBPROCESS_CASES or sample

    wanted = list(dict.fromkeys(wanted))
    results = {}
    # Each payload case has its own sentinel, so its calls run with the others and a payload
    # that fires is still pinned on its case.
    by_process = [w for w in wanted if by_subprocess(w)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        for inv, res in ex.map(one, by_process):
            results[inv] = res
    for inv in by_process:
        if corpus.sentinel_path(built_corpus.dest, inv[0]).exists():
            results[inv].payload_fired = True
    for fired in corpus.sentinels(built_corpus.dest):  # pinned above; keep other tests clean
        fired.unlink()
    for inv in [w for w in wanted if w not in results]:
        with time_limit(IN_PROCESS_TIMEOUT_S):
            results[inv] = one(inv, in_process=True)[1]
    return results


def _case(built_corpus: Corpus, name: str) -> corpus.Case:
    case = built_corpus.cases[name]
    if case.skip:
        pytest.skip(case.skip)
    return case


def _normalise(text: str, built: Corpus) -> str:
    """Lowercase ``text`` with every corpus path / file name blanked out."""
    out = text
    names = [str(built.dest)] + [str(c.path) for c in built.cases.values()]
    names += [c.path.name for c in built.cases.values()]
    for n in sorted(set(names), key=len, reverse=True):
        out = out.replace(n, "<file>")
    return out.lower()


def _mentions_expect(case: corpus.Case, text: str, built: Corpus) -> bool:
    norm = _normalise(text, built)
    return any(alt in norm for alt in case.expect_alternatives())


def _check_side_effects(case: corpus.Case, built: Corpus, res: Result) -> None:
    sentinel = corpus.sentinel_path(built.dest, case.name)
    assert not res.payload_fired, (
        f"PAYLOAD EXECUTED: a call on this case created {sentinel}{res.describe()}")
    assert not corpus.sentinels(built.dest), (
        f"PAYLOAD EXECUTED: {corpus.sentinels(built.dest)} exist{res.describe()}")
    assert fingerprint(case.path) == built.fingerprints[case.name], (
        f"{case.path} was modified{res.describe()}")
    assert listing(built.dest) == built.listing, (
        f"files appeared/disappeared in the corpus directory: "
        f"{sorted(set(listing(built.dest)) ^ set(built.listing))}{res.describe()}")


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


@pytest.mark.parametrize("inv", TEXT_INVOCATIONS)
def test_cli_refuses_cleanly(inv, built_corpus, cli_results):
    name, cmd, _ = inv
    case = _case(built_corpus, name)
    res = cli_results[inv]
    assert not res.timed_out, f"no answer within {TIMEOUT_S}s{res.describe()}"
    _check_side_effects(case, built_corpus, res)
    assert res.rc == 2, f"expected exit status 2{res.describe()}"
    err = res.stderr.strip()
    assert err, f"stderr is empty{res.describe()}"
    assert "Traceback" not in res.stderr, f"traceback on stderr{res.describe()}"
    assert "internal error" not in res.stderr.lower(), (
        f"an unexpected exception reached the catch-all handler{res.describe()}")
    assert "out of memory" not in res.stderr.lower(), (
        f"refused only after an allocation failed: the memory estimate came too late"
        f"{res.describe()}")
    lines = err.splitlines()
    assert len(lines) <= MAX_STDERR_LINES, (
        f"stderr has {len(lines)} lines (max {MAX_STDERR_LINES}){res.describe()}")
    if case.names_file:
        assert case.path.name in res.stderr, (
            f"stderr does not name the file {case.path.name!r}{res.describe()}")
    assert _mentions_expect(case, res.stderr, built_corpus), (
        f"stderr should mention {case.expect!r}{res.describe()}")


@pytest.mark.parametrize("inv", JSON_INVOCATIONS)
def test_cli_json_error(inv, built_corpus, cli_results):
    name, cmd, _ = inv
    case = _case(built_corpus, name)
    res = cli_results[inv]
    assert not res.timed_out, f"no answer within {TIMEOUT_S}s{res.describe()}"
    _check_side_effects(case, built_corpus, res)
    assert res.rc == 2, f"expected exit status 2{res.describe()}"
    assert "Traceback" not in res.stderr, f"traceback on stderr{res.describe()}"
    try:
        doc = json.loads(res.stdout)
    except ValueError as e:
        pytest.fail(f"stdout is not one JSON document ({e}){res.describe()}")
    if cmd == "check" and case.kind == "model":  # the model's error inside the report
        assert doc.get("command") == "check" and doc["passed"] is False, res.describe()
        assert len(doc["errors"]) == 1 and doc["errors"][0]["model"] == str(case.path), (
            res.describe())
        err = {key: doc["errors"][0][key] for key in ("message", "hint")}
    else:
        assert isinstance(doc, dict) and set(doc) == {"error"}, (
            f"expected {{'error': ...}} only{res.describe()}")
        err = doc["error"]
    assert isinstance(err, dict) and set(err) == {"message", "hint"}, (
        f"expected error = {{'message', 'hint'}}{res.describe()}")
    assert isinstance(err["message"], str) and err["message"].strip(), (
        f"empty error message{res.describe()}")
    assert err["hint"] is None or isinstance(err["hint"], str), (
        f"hint must be a string or null{res.describe()}")
    assert "Traceback" not in err["message"]
    assert "internal error" not in err["message"].lower(), (
        f"an unexpected exception reached the catch-all handler{res.describe()}")
    if case.names_file:
        assert case.path.name in err["message"], (
            f"message does not name the file {case.path.name!r}{res.describe()}")
    text = err["message"] + "\n" + (err["hint"] or "")
    assert _mentions_expect(case, text, built_corpus), (
        f"message/hint should mention {case.expect!r}{res.describe()}")


@pytest.mark.slow
def test_valid_model_is_accepted(built_corpus, tmp_path):
    """Control: the reference model used by probe/lag cases must work."""
    exe = rnngrad_executable()
    if exe is None:
        pytest.fail("the `rnngrad` command is not installed (pip install -e .)")
    model = built_corpus.dest / corpus.VALID_MODEL_NAME
    for cmd in corpus.MODEL_COMMANDS:
        res = run_cli(exe, corpus.model_argv(cmd, model), tmp_path)
        assert res.rc == 0, f"valid model refused{res.describe()}"
        assert "Traceback" not in res.stderr, res.describe()


def test_corpus_is_small_and_fast(tmp_path):
    t0 = time.perf_counter()
    cases = corpus.build_corpus(tmp_path / "c")
    dt = time.perf_counter() - t0
    names = [c.name for c in cases]
    assert len(names) == len(set(names))
    assert [(c.name, c.kind) for c in cases] == SPECS
    disk = sum(p.stat().st_blocks * 512 for p in (tmp_path / "c").iterdir() if p.is_file())
    assert disk < 5 * 1024 * 1024, f"corpus uses {disk} bytes on disk"
    assert dt < 10, f"building the corpus took {dt:.1f}s"
    for c in cases:
        assert c.kind in corpus.KINDS
        assert c.expect and c.expect == c.expect.lower()
        assert c.args and c.args[0] in corpus.MODEL_COMMANDS
        assert c.args == c.argv(c.commands[0])
        if c.name not in ("missing_path", "output_missing_folder"):
            assert os.path.lexists(c.path), c.name
    names = {c.name for c in cases}
    assert corpus.MEMORY_CASES <= names and corpus.HANG_CASES <= names
    assert not corpus.sentinels(tmp_path / "c")
    assert set(_PAYLOAD_LOADERS) == set(corpus.PAYLOAD_CASES)


_PAYLOAD_LOADERS = {
    "pt_os_system_payload": "import torch; torch.load(p, weights_only=False)",
    "pt_legacy_os_system_payload": "import torch; torch.load(p, weights_only=False)",
    "npz_object_payload": "import numpy as np; [v for v in np.load(p, allow_pickle=True).values()]",
    "probe_object_payload": "import numpy as np; np.load(p, allow_pickle=True)",
}


@pytest.mark.parametrize("name", sorted(_PAYLOAD_LOADERS))
def test_payload_is_live(name, tmp_path):
    """Control: the hostile pickles really do fire when loaded unsafely.

    Proves that "no sentinel" in the CLI tests means the CLI refused the
    payload, not that the payload was a dud.
    """
    dest = tmp_path / "c"
    (case,) = corpus.build_corpus(dest, only={name})
    sentinel = corpus.sentinel_path(dest, name)
    assert not sentinel.exists()
    code = f"p = {str(case.path)!r}\n{_PAYLOAD_LOADERS[name]}"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, timeout=120)
    assert sentinel.exists(), f"{name}: payload did not fire under an unsafe loader"
