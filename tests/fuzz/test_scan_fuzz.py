"""The campaign: mutated manifests (``strategies``) through ``tbyte-policy scan`` as files, on stdin and as the
pre-commit hook runs it, with every format written; the properties are ``harness.check_run``'s.

The number of examples is the profile's (tests/conftest.py): a short run by default, thousands with
``pytest -m fuzz --hypothesis-profile long``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import test_secret_leaks
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from fuzz import harness
from fuzz.corpus import SEED_TEXTS
from fuzz.strategies import Case, byte_cases, cases, object_cases, secret_preserving, text_cases

pytestmark = pytest.mark.fuzz
SLOW_INPUTS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
SMALL_FILE_BYTES = 20_000


def _scan_case(case: Case, *arguments: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = harness.write_case(Path(directory), case)
        note(f"{case.name}: {case.data[:3000]!r}")
        harness.check_run(harness.scan([str(path), *arguments], Path(directory)), [str(path)])


@settings(deadline=None, suppress_health_check=SLOW_INPUTS)
@given(object_cases())
def test_mutated_objects(case):
    _scan_case(case)


@settings(deadline=None, suppress_health_check=SLOW_INPUTS)
@given(text_cases())
def test_mutated_text(case):
    _scan_case(case)


@settings(deadline=None, suppress_health_check=SLOW_INPUTS)
@given(byte_cases())
def test_mutated_bytes(case):
    _scan_case(case)


@settings(deadline=None, suppress_health_check=SLOW_INPUTS)
@given(cases)
def test_stdin(case):
    note(f"stdin: {case.data[:3000]!r}")
    with tempfile.TemporaryDirectory() as directory:
        run = harness.scan(["-"], Path(directory), stdin=case.data)
        harness.check_run(run, ["<stdin>"])


@settings(deadline=None, suppress_health_check=SLOW_INPUTS)
@given(st.lists(cases, min_size=1, max_size=3))
def test_pre_commit_hook(staged):
    """The hook's command (.pre-commit-hooks.yaml): the staged files in one run, text format, fail on high."""
    with tempfile.TemporaryDirectory() as directory:
        paths = []
        for index, case in enumerate(staged):
            folder = Path(directory) / str(index)
            folder.mkdir()
            paths.append(str(harness.write_case(folder, case)))
            note(f"{paths[-1]}: {case.data[:2000]!r}")
        run = harness.scan(["--format", "text", "--fail-on", "high", *paths], Path(directory))
        harness.check_run(run, paths)


@settings(deadline=None, suppress_health_check=SLOW_INPUTS, max_examples=max(5, settings.default.max_examples // 5))
@given(st.lists(cases, min_size=2, max_size=4))
def test_parallel_parsing_changes_nothing(files):
    """--jobs 2 parses in worker processes; the report is the same as --jobs 1's ("whatever the count")."""
    with tempfile.TemporaryDirectory() as directory:
        paths = []
        for index, case in enumerate(files):
            folder = Path(directory) / str(index)
            folder.mkdir()
            paths.append(str(harness.write_case(folder, case)))
        serial = harness.scan([*paths, "--jobs", "1"], Path(directory))
        parallel = harness.scan([*paths, "--jobs", "2"], Path(directory))
        harness.check_run(parallel, paths)
        assert (parallel.exit_code, parallel.reports["json"]) == (serial.exit_code, serial.reports["json"])


@pytest.fixture(scope="module")
def warm_process(tmp_path_factory):
    """What the first scan of a process pays once (the catalogue, each kind's schema validator) paid before the
    clock starts: the bound is on a scan's own work."""
    directory = tmp_path_factory.mktemp("warm")
    for index, (_, text) in enumerate(SEED_TEXTS):
        (directory / f"{index}.yaml").write_text(text, encoding="utf-8")
    harness.scan([str(directory), "--format", "json"], directory, formats=())


@settings(deadline=1000, suppress_health_check=SLOW_INPUTS)
@given(cases.filter(lambda case: len(case.data) < SMALL_FILE_BYTES))
def test_a_small_file_takes_under_a_second(warm_process, case):
    with tempfile.TemporaryDirectory() as directory:
        path = harness.write_case(Path(directory), case)
        run = harness.scan([str(path), "--format", "json"], Path(directory), formats=())
        assert run.exit_code in (0, 1, 2) and run.exception is None


@settings(deadline=None, suppress_health_check=SLOW_INPUTS)
@given(value=test_secret_leaks.secrets,
       plants=st.lists(st.sampled_from(sorted(test_secret_leaks.PLANTS)), min_size=1, max_size=5, unique=True),
       name=test_secret_leaks.env_names, key=test_secret_leaks.data_keys, wrong_shapes=st.booleans(),
       broken_tail=st.booleans(), data=st.data())
def test_a_planted_secret_never_reaches_any_format(value, plants, name, key, wrong_shapes, broken_tail, data):
    """test_secret_leaks' plants (Secret data and stringData, ConfigMap data, env values), written every way
    that keeps them where they are, through every format, stdout and stderr."""
    text = test_secret_leaks.manifest(value, plants, name, key, wrong_shapes, broken_tail)
    case = Case(data.draw(st.sampled_from(["planted.yaml", "planted.json"])), data.draw(secret_preserving(text)))
    note(f"{case.data!r}")
    with tempfile.TemporaryDirectory() as directory:
        path = harness.write_case(Path(directory), case)
        run = harness.scan([str(path)], Path(directory))
        harness.check_run(run, [str(path)])
        test_secret_leaks.assert_not_leaked(value, *run.outputs().values())


@settings(deadline=None, suppress_health_check=SLOW_INPUTS, max_examples=max(3, settings.default.max_examples // 20))
@given(cases, st.sampled_from(["file", "stdin", "jobs"]), st.sampled_from(["utf-8", "ascii", "latin-1"]))
def test_the_installed_command(case, channel, encoding):
    """A few cases through a real process: cli.main's exit code, the real stdout and stderr (the --jobs workers'
    too), in a terminal encoding that may not be UTF-8 (a traceback could hide in stderr behind exit 2)."""
    with tempfile.TemporaryDirectory() as directory:
        path = harness.write_case(Path(directory), case)
        arguments, stdin = {"file": ([str(path)], None), "stdin": (["-"], case.data),
                            "jobs": ([str(path), str(path), "--jobs", "2"], None)}[channel]
        for output_format in ("text", "json"):
            process = harness.scan_subprocess([*arguments, "--format", output_format], stdin, encoding)
            # JSON is UTF-8 whatever the terminal; text is in the terminal's encoding.
            stdout = process.stdout.decode("utf-8" if output_format == "json" else encoding)
            stderr = process.stderr.decode(encoding)
            assert process.returncode in (0, 1, 2), stderr
            for marker in harness.MARKERS_OF_A_BUG:
                assert marker not in stdout and marker not in stderr, stderr
