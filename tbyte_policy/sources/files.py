"""Files, directories and stdin → documents."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path

from tbyte_policy.findings import ReportError
from tbyte_policy.sources import LoadResult
from tbyte_policy.sources.yaml_documents import parse_text

YAML_SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024
STDIN_PATH = "<stdin>"


class FileSource:
    """The files that command-line paths name: files, directories (recursive) and ``-`` for stdin."""

    def __init__(self, paths: Iterable[str], *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 exclude: Iterable[str] = (), jobs: int = 1, errors: Iterable[ReportError] = ()) -> None:
        self.paths = list(paths)
        self.max_file_bytes = max_file_bytes
        self.exclude = list(exclude)
        self.jobs = jobs
        self.errors = list(errors)  # met while the paths were found (a path that does not exist)

    def load(self) -> LoadResult:
        result = load_paths(self.paths, max_file_bytes=self.max_file_bytes, exclude=self.exclude, jobs=self.jobs)
        result.errors[:0] = self.errors
        return result


def discover(paths: Iterable[str], exclude: Iterable[str] = ()) -> tuple[list[str], list[ReportError]]:
    """Expand the command-line paths into files, in a stable order."""
    patterns = list(exclude)
    found: list[str] = []
    errors: list[ReportError] = []
    for raw in paths:
        if raw == "-":
            found.append("-")
            continue
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if ".git" in candidate.parts or not candidate.is_file():
                    continue
                if candidate.suffix.lower() in YAML_SUFFIXES and not _excluded(candidate, patterns):
                    found.append(str(candidate))
        elif path.is_file():
            if not _excluded(path, patterns):
                found.append(str(path))
        else:
            errors.append(ReportError(str(path), None, "no such file or directory"))
    return found, errors


def _excluded(path: Path, patterns: list[str]) -> bool:
    text = path.as_posix()
    return any(fnmatch(text, pattern) or path.match(pattern) for pattern in patterns)


def load_paths(paths: Iterable[str], *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
               exclude: Iterable[str] = (), jobs: int = 1) -> LoadResult:
    """Load every file the paths name, in order; ``jobs`` > 1 parses files in that many processes, with
    the same result in the same order."""
    files, errors = discover(paths, exclude)
    result = LoadResult(errors=errors)
    if jobs > 1 and len(files) > 1 and "-" not in files:
        import pickle
        from concurrent.futures import ProcessPoolExecutor

        size = -(-len(files) // (jobs * 4))  # a few chunks per process evens out uneven files
        chunks = [files[start:start + size] for start in range(0, len(files), size)]
        with ProcessPoolExecutor(jobs) as pool:
            for part in pool.map(_load_files_pickled, chunks, [max_file_bytes] * len(chunks)):
                result.absorb(pickle.loads(part))
    else:
        result.absorb(_load_files(files, max_file_bytes))
    return result


# The pickler recurses a few frames per level of a document; the parser builds documents up to the recursion
# limit's depth (deeper ones are input errors), so pickling them takes a higher one. (Unpickling is not recursive.)
_PICKLE_RECURSION_LIMIT = 20_000


def _load_files_pickled(files: list[str], max_file_bytes: int) -> bytes:
    """``_load_files`` in a worker process, its result pickled here rather than by the pool."""
    import pickle  # only --jobs needs it; a plain scan's start-up does not pay for it

    result = _load_files(files, max_file_bytes)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _PICKLE_RECURSION_LIMIT))
    try:
        return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        sys.setrecursionlimit(limit)


def _load_files(files: list[str], max_file_bytes: int) -> LoadResult:
    result = LoadResult()
    for file in files:
        result.files += 1
        if file == "-":
            _load_bytes(sys.stdin.buffer.read(max_file_bytes + 1), STDIN_PATH, result, max_file_bytes,
                        keep_text=True)
            continue
        try:
            size = Path(file).stat().st_size
            if size > max_file_bytes:
                result.errors.append(ReportError(file, None,
                                               f"file is {size} bytes, over the {max_file_bytes}-byte limit"))
                continue
            data = Path(file).read_bytes()
        except OSError as exc:
            result.errors.append(ReportError(file, None, f"cannot read file: {exc.strerror or exc}"))
            continue
        _load_bytes(data, file, result, max_file_bytes)
    return result


def _load_bytes(data: bytes, path: str, result: LoadResult, max_file_bytes: int, *, keep_text: bool = False) -> None:
    if len(data) > max_file_bytes:
        result.errors.append(ReportError(path, None, f"input is over the {max_file_bytes}-byte limit"))
        return
    if b"\x00" in data:
        result.errors.append(ReportError(path, None, "binary file (contains NUL bytes), not YAML or JSON"))
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        result.errors.append(ReportError(path, line, "not valid UTF-8 text (binary file?)"))
        return
    if keep_text:
        result.texts[path] = text
    parse_text(text, path, result)


