"""Many ramps at once: serially, in a local process pool, or on a Dask cluster.

The driver pins one CRDS context, reads each input's primary header and asks the cache
once per distinct selection header (INSTRUME, DETECTOR, SUBARRAY, DATE-OBS, TIME-OBS).
Each file is then one task, ``run_one(path, settings, selection)``, which runs the step
with the reference already chosen and returns a small record. Workers read reference
files but never load mappings or write to the cache, and each worker process loads a
given reference at most once.

A failing file (bad input, a worker that died) becomes a FAILED record and never stops the
others; the step writes outputs under a temporary name and renames them, and the driver
removes the temporary files of a worker that was killed, so a failure leaves no partial
output. Every mode runs the same ``run_one``, so their outputs are byte-identical.
"""

from __future__ import annotations

import glob
import os
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from astropy.io import fits

from dqinit.errors import ReferenceSelectionError
from dqinit.layouts.hdus import regular_file
from dqinit.layouts.primary import selection_header
from dqinit.step import FAILED, DQInitResult, DQInitStep, default_output
from dqref.errors import DQRefError

if TYPE_CHECKING:
    import concurrent.futures

    from dqref.cache.local_cache import BestRef

DASK_HINT = "Dask is not installed: pip install 'ligeriri-dq[dask]'"
WORKER_DIED = "worker died"
#: `dqref.atomic.temporary_sibling` names: ``.<final name>.<12 hex digits>.tmp``.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.tmp")

Record = dict
Notify = Callable[[Record], None]


class ParallelError(DQRefError):
    """The run itself cannot go ahead (no inputs, an unreadable list, no scheduler)."""


class DaskMissingError(ParallelError, ImportError):
    """``--scheduler`` needs the optional ``dask`` extra."""


@dataclass(frozen=True)
class RunSettings:
    """What every task needs: the step's options and the context pinned by the driver.

    Paths are kept as strings so the settings pickle small and hash as a memo key.
    ``output`` names the output of a single input; ``context`` None means the cache's
    current context (see `pinned`).
    """

    crds_path: str | None = None
    override_dq: str | None = None
    user_dq: str | None = None
    output_dir: str | None = None
    output: str | None = None
    in_place: bool = False
    overwrite: bool = False
    context: str | None = None

    def __post_init__(self):
        for name in ("crds_path", "override_dq", "user_dq", "output_dir", "output"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                object.__setattr__(self, name, os.fspath(value))
        if self.output and self.in_place:
            raise ParallelError("an output file and in-place updates exclude each other")

    def pinned(self) -> RunSettings:
        """Return these settings with the context fixed (default: the cache's current one).

        Every task then uses the same rules, even if a reference is registered mid-run.
        An override reference needs no cache, so nothing is pinned then.
        """
        if self.override_dq or self.context:
            return self
        from dqref.cache.local_cache import LocalCache

        return replace(self, context=LocalCache(self.crds_path).current_context)

    @property
    def step_options(self) -> tuple:
        """What the step object depends on (not where its outputs go)."""
        return self.crds_path, self.override_dq, self.user_dq, self.context


SelectionKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Selection:
    """The driver's answer for one selection header: a reference choice, or an error.

    ``choice.path`` None means no rule matches (the step SKIPs the file).
    """

    key: SelectionKey
    choice: BestRef | None = None
    error: str = ""


class Task(NamedTuple):
    """The arguments of one `run_one` call."""

    path: str
    settings: RunSettings
    selection: Selection | None


def selection_key(header) -> SelectionKey:
    """Return the keywords CRDS selects on, as a hashable key."""
    return tuple(sorted(selection_header(header).items()))


# -- inputs -------------------------------------------------------------------------------
def expand_inputs(arguments: Iterable[str | os.PathLike] = (),
                  from_list: str | os.PathLike | None = None) -> list[Path]:
    """Return the input files named by paths, glob patterns and a list file.

    Parameters
    ----------
    arguments : iterable of path-like
        Paths, or glob patterns (an argument with ``*?[`` that is not an existing file),
        expanded in sorted order. A pattern that matches nothing is kept as it is, so its
        task reports the missing file.
    from_list : path-like, optional
        A file with one path per line; blank lines and lines starting with ``#`` are
        skipped, relative paths are relative to the list file's folder.

    Returns
    -------
    list of Path
        Arguments first, then the list; duplicates dropped, first occurrence kept.

    Raises
    ------
    ParallelError
        No input at all, or the list file cannot be read.
    """
    found: list[Path] = []
    for argument in arguments:
        text = os.fspath(argument)
        is_pattern = any(character in text for character in "*?[") and \
            not os.path.exists(text)
        matches = sorted(glob.glob(text)) if is_pattern else []
        found += [Path(match) for match in matches] or [Path(text)]
    if from_list is not None:
        list_path = Path(from_list)
        try:
            lines = list_path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or error
            raise ParallelError(f"{list_path}: cannot read the input list ({reason})") \
                from None
        for line in lines:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                found.append(Path(os.path.normpath(list_path.parent / Path(entry).expanduser())))
    unique: dict[str, Path] = {}  # by absolute path: "a.fits" and "./a.fits" are one file
    for path in found:
        unique.setdefault(os.path.abspath(path), path)
    if not unique:
        raise ParallelError("no input files: give paths, a glob pattern or --from-list FILE")
    return list(unique.values())


def output_target(path: str | os.PathLike, settings: RunSettings) -> Path:
    """Return the file a task writes (the input itself with ``in_place``)."""
    path = Path(path)
    if settings.in_place:
        return path
    if settings.output:
        return Path(settings.output)
    return default_output(path, Path(settings.output_dir) if settings.output_dir else None)


# -- reference selection (driver) -------------------------------------------------------------
def select_references(paths: Sequence[str | os.PathLike],
                      settings: RunSettings) -> list[Selection | None]:
    """Choose the reference of every input, once per distinct selection header.

    The choice is exactly `DQInitStep.select_reference`'s under ``settings.context``: a
    rule's reference that is missing from the cache, or an error of the look-up, is kept
    as the ``error`` of the selection and reported by each file that needs it.

    Returns
    -------
    list of Selection or None
        One per path, in order; None when the step should look up itself (an override
        reference, or a header the driver cannot read: the task reports why).
    """
    if settings.override_dq:
        return [None] * len(paths)
    step = DQInitStep(crds_path=settings.crds_path, context=settings.context)
    chosen: dict[SelectionKey, Selection] = {}
    selections: list[Selection | None] = []
    for path in paths:
        try:
            key = selection_key(fits.getheader(regular_file(path)))
        except Exception:  # noqa: BLE001 - not FITS, missing, ...: its task says why
            selections.append(None)
            continue
        if key not in chosen:
            try:
                chosen[key] = Selection(key, step.select_reference(dict(key)))
            except Exception as error:  # noqa: BLE001 - fails the files with this header
                chosen[key] = Selection(key, error=_error_line(error))
        selections.append(chosen[key])
    return selections


# -- one file (worker) ---------------------------------------------------------------------
class PreselectedStep(DQInitStep):
    """A DQInitStep that uses the references chosen by the driver.

    Apart from where the choice comes from it is the CRDS path of the base class: the
    output records ``crds://<name>`` and the pinned context, and the reference is
    validated. Choices are kept per selection header, so threads of one Dask worker can
    share the step (and its memo of loaded references) safely.
    """

    def __init__(self, settings: RunSettings):
        super().__init__(crds_path=settings.crds_path, override_dq=settings.override_dq,
                         user_dq=settings.user_dq, context=settings.context)
        self.selections: dict[SelectionKey, Selection] = {}
        self._loading = threading.Lock()

    def select_reference(self, header) -> BestRef:
        selection = self.selections.get(selection_key(header)) \
            if self.override_dq is None else None
        if selection is None:  # not chosen by the driver: look up as the base class does
            return super().select_reference(header)
        if selection.error:
            raise ReferenceSelectionError(selection.error)
        return selection.choice

    def _reference_mask(self, path: Path):
        with self._loading:  # two threads must not load the same reference twice
            return super()._reference_mask(path)


_STEPS: dict[tuple, PreselectedStep] = {}  # this process's step (one run at a time)
_STEPS_LOCK = threading.Lock()


def worker_step(settings: RunSettings) -> PreselectedStep:
    """Return this process's step for ``settings``: references load once per process.

    Only the latest settings' step is kept, so a long-lived Dask worker holds the masks of
    one run at a time.
    """
    with _STEPS_LOCK:
        step = _STEPS.get(settings.step_options)
        if step is None:
            _STEPS.clear()
            step = _STEPS[settings.step_options] = PreselectedStep(settings)
        return step


def run_one(path: str | os.PathLike, settings: RunSettings,
            selection: Selection | None = None) -> Record:
    """Run the step on one file and return its record; never raises for a bad file.

    Returns
    -------
    dict
        ``input, output, status, reference, context, message, seconds, error``: ``error``
        is the one-line reason of a FAILED file (its type too when it is not a user
        error), None otherwise; ``message`` is the step's note (why it SKIPPED).
    """
    started = time.perf_counter()
    error = None
    try:
        step = worker_step(settings)
        if selection is not None:
            step.selections[selection.key] = selection
        result = step.run(path, output=settings.output, output_dir=settings.output_dir,
                          in_place=settings.in_place, overwrite=settings.overwrite)
    except Exception as failure:  # noqa: BLE001 - one bad file must not stop the others
        error = _error_line(failure)
        result = DQInitResult(str(path), FAILED)
    return _record(result, path, time.perf_counter() - started, error)


def _record(result: DQInitResult, path, seconds: float, error: str | None) -> Record:
    record = result.to_record()
    record.update(input=str(path), seconds=round(seconds, 3), error=error)
    return record


def failed_record(path: str | os.PathLike, error: str) -> Record:
    """Return the record of a file that could not run at all."""
    return _record(DQInitResult(str(path), FAILED), path, 0.0, error)


def _error_line(error: BaseException) -> str:
    from dqref.console import USER_ERRORS

    text = " ".join(str(error).split())
    if isinstance(error, USER_ERRORS):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# -- many files (driver) -------------------------------------------------------------------
def run_many(paths: Sequence[str | os.PathLike], settings: RunSettings,
             workers: int | None = None,
             scheduler: str | None = None, on_result: Notify | None = None) -> list[Record]:
    """Run the step on many files; return their records in input order.

    Parameters
    ----------
    paths : sequence of path-like
        The inputs (see `expand_inputs`).
    settings : RunSettings
        The step's options; the context is pinned here if it is not already.
    workers : int, optional
        1 runs in this process, serially; more uses a local process pool of that many
        processes (or, with ``scheduler="local"``, that many Dask workers). None: as
        `choose_workers` decides from the inputs' sizes (serial unless a pool pays).
    scheduler : str, optional
        ``"local"`` starts a ``distributed.LocalCluster`` here; an address such as
        ``tcp://host:8786`` uses a running Dask cluster (its workers must see the inputs,
        the outputs and the cache under the same paths).
    on_result : callable, optional
        Called in this process with each record as it arrives (a progress bar).

    Returns
    -------
    list of dict
        One `run_one` record per input. Two inputs with the same output file would race:
        the later one is FAILED without running.

    Raises
    ------
    ParallelError
        The cache has no current context, several inputs for one ``output``, Dask is
        missing (`DaskMissingError`) or the scheduler cannot be reached.
    """
    if settings.output and len(paths) > 1:
        raise ParallelError("one output file for several inputs; use an output folder")
    notify = on_result or _ignore
    cores = os.cpu_count() or 1
    if workers is None:
        workers = cores if scheduler else choose_workers(input_sizes(paths), cores)
    pooled = not scheduler and workers > 1 and len(paths) > 1
    if pooled:
        _start_fork_server()
    tasks, records = plan(paths, settings.pinned())
    for record in records.values():
        notify(record)
    if scheduler:
        records.update(_run_dask(run_one, tasks, scheduler, workers, notify))
    elif not pooled or len(tasks) <= 1:
        for index, task in tasks.items():
            records[index] = run_one(*task)
            notify(records[index])
    else:
        records.update(_run_pool(run_one, tasks, min(workers, len(tasks)), notify))
    return [records[index] for index in range(len(paths))]


#: One process runs the step at about this many input bytes per second (JWST ramps of
#: 84 MB, page cache warm; benchmarks/bench_parallel.py, docs/parallel.md).
SERIAL_BYTES_PER_SECOND = 1.0e9
#: Seconds a pool costs before it runs faster than one process: the fork server's
#: imports, each worker's first reference load, the shutdown (measured on 2 cores).
POOL_START_SECONDS = 1.0
#: Share of the ideal speed-up a pool reaches: the step copies bytes, and copies share
#: the memory bus and the page cache's writeback (measured 0.15 to 0.5 on 2 cores, where
#: two cp processes at once copy no faster than one).
POOL_EFFICIENCY = 0.3


def choose_workers(sizes: Sequence[int], cores: int) -> int:
    """Return how many processes to run inputs of these sizes on (1: serially).

    A pool of ``n`` processes saves at most ``(1 - 1/n)`` of the serial time, of which
    it reaches `POOL_EFFICIENCY`, and costs `POOL_START_SECONDS`; it is used only when
    the saving is larger than that cost. The serial time is estimated from the inputs'
    bytes (`SERIAL_BYTES_PER_SECOND`).

    Parameters
    ----------
    sizes : sequence of int
        Each input's size in bytes (0 for one that cannot be read).
    cores : int
        Processors available.

    Returns
    -------
    int
        1, or ``min(cores, len(sizes))``.
    """
    workers = min(cores, len(sizes))
    if workers < 2:
        return 1
    serial = sum(sizes) / SERIAL_BYTES_PER_SECOND
    saving = serial * (1 - 1 / workers) * POOL_EFFICIENCY
    return workers if saving > POOL_START_SECONDS else 1


def input_sizes(paths: Iterable[str | os.PathLike]) -> list[int]:
    """Return each input's size in bytes, 0 for one that cannot be read."""
    sizes = []
    for path in paths:
        try:
            sizes.append(os.stat(path).st_size)
        except OSError:
            sizes.append(0)
    return sizes


def plan(paths: Sequence[str | os.PathLike], settings: RunSettings
         ) -> tuple[dict[int, Task], dict[int, Record]]:
    """Return the tasks to run and the records of inputs that cannot run, by input index.

    References are selected here (`select_references`); an input whose output file is also
    an earlier input's is FAILED without running, as the two would race.
    """
    tasks: dict[int, Task] = {}
    records: dict[int, Record] = {}
    writers: dict[Path, str] = {}
    for index, (path, selection) in enumerate(zip(paths, select_references(paths, settings),
                                                  strict=True)):
        target = output_target(path, settings).resolve()
        if target in writers:
            records[index] = failed_record(path, f"{target} is also the output of "
                                                 f"{writers[target]}; not run")
        else:
            writers[target] = str(path)
            tasks[index] = Task(str(path), _rerunnable(settings, target), selection)
    return tasks, records


def _rerunnable(settings: RunSettings, target: Path) -> RunSettings:
    """Settings that let a task run twice: its output may be one it wrote itself.

    Dask reruns the finished tasks whose results died with a worker, and a pool reruns
    the tasks in flight when a worker died; such a task may find its own output already
    written. An output that exists before the run is still refused, by the step as ever.
    """
    if settings.overwrite or settings.in_place or target.exists():
        return settings
    return replace(settings, overwrite=True)


def _ignore(record: Record) -> None:
    """No progress to show."""


#: What the fork server imports once for every worker: the step, the reference reader
#: and the value types the driver sends (`Selection` holds a `BestRef`).
# crds too: the cache modules no longer import it, and each worker would pay ~0.7 s
_WORKER_PRELOAD = [__name__, "dqref.model", "dqref.cache.local_cache", "crds"]


def _pool_context():
    """Workers start from a fork server that has imported the step once: quick to start,
    and no crds/astropy state (or threads) of the driver is copied into them by fork."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_WORKER_PRELOAD)
    return context


def _start_fork_server() -> None:
    """Start the fork server now: it imports the step while the driver plans the run."""
    from multiprocessing import forkserver

    _pool_context()
    forkserver.ensure_running()


def _run_pool(function: Callable[..., Record], tasks: dict[int, Task], workers: int,
              notify: Notify) -> dict[int, Record]:
    """Run tasks in local processes; a worker that dies fails only the file that killed it.

    When a worker dies every task in flight is suspect: each is run again alone, in a
    fresh pool, and is FAILED only if it kills that one too; the rest carry on.
    """
    records: dict[int, Record] = {}
    waiting = deque(tasks)
    while waiting:
        suspects = _pool_pass(function, tasks, waiting, workers, records, notify)
        for index in suspects:
            if _pool_pass(function, tasks, deque([index]), 1, records, notify):
                records[index] = failed_record(tasks[index].path, WORKER_DIED)
                notify(records[index])
        if suspects:  # their pools are gone: nobody writes these temporaries any more
            _remove_temporaries(output_target(tasks[index].path, tasks[index].settings)
                                for index in suspects)
    return records


def _pool_pass(function, tasks: dict[int, Task], waiting: deque, workers: int,
               records: dict[int, Record], notify: Notify) -> list[int]:
    """Feed ``waiting`` to one pool until it is empty or a worker dies.

    At most ``workers`` tasks are in flight, so a dead worker leaves few suspects and an
    interrupt waits for few files. Returns the tasks in flight when a worker died.
    """
    import concurrent.futures

    suspects: list[int] = []
    in_flight: dict[concurrent.futures.Future, int] = {}
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=_pool_context()) as pool:
        while True:
            while waiting and not suspects and len(in_flight) < workers:
                index = waiting.popleft()
                try:
                    in_flight[pool.submit(function, *tasks[index])] = index
                except concurrent.futures.process.BrokenProcessPool:
                    suspects.append(index)  # never ran; rerun alone like the others
            if not in_flight:
                break
            done, _ = concurrent.futures.wait(in_flight,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                _collect(future, in_flight.pop(future), tasks, records, notify, suspects,
                         concurrent.futures.process.BrokenProcessPool)
    return sorted(suspects)


def _collect(future, index: int, tasks: dict[int, Task], records: dict[int, Record],
             notify: Notify, suspects: list[int], worker_died: type[BaseException],
             **extra) -> None:
    """Store and notify the record of a finished task, or add it to ``suspects`` when its
    worker died (``worker_died``: the executor's exception for that)."""
    try:
        records[index] = {**future.result(), **extra}
    except worker_died:
        suspects.append(index)
        return
    except Exception as error:  # noqa: BLE001 - e.g. an argument that won't pickle
        records[index] = failed_record(tasks[index].path, _error_line(error))
    notify(records[index])


def _run_dask(function: Callable[..., Record], tasks: dict[int, Task], scheduler: str,
              workers: int, notify: Notify) -> dict[int, Record]:
    """Run tasks on a Dask cluster: a new LocalCluster (``"local"``) or a scheduler address.

    Dask itself reruns the tasks of a worker that died elsewhere, and gives up on a task
    that was on several dying workers (``distributed.scheduler.allowed-failures``). An
    innocent task queued behind the culprit shares those deaths, so every task Dask gave
    up on is run again alone, after the others: only one that kills a worker on its own is
    FAILED.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DaskMissingError(DASK_HINT) from None
    cluster = client = None
    records: dict[int, Record] = {}
    try:
        try:
            if scheduler == "local":
                cluster = LocalCluster(n_workers=max(workers, 1), threads_per_worker=1,
                                       processes=True, dashboard_address=None)
                client = Client(cluster)
            else:
                client = Client(scheduler)
        except (OSError, ValueError) as error:
            raise ParallelError(f"cannot reach the Dask scheduler {scheduler}: "
                                f"{' '.join(str(error).split())}") from None
        suspects = _dask_pass(client, function, tasks, list(tasks), records, notify)
        for index in suspects:
            if _dask_pass(client, function, tasks, [index], records, notify):
                records[index] = failed_record(tasks[index].path, WORKER_DIED)
                notify(records[index])
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    # Every task is done: a worker killed mid-write (even one whose task Dask reran
    # elsewhere) left its temporary file behind.
    _remove_temporaries(output_target(task.path, task.settings) for task in tasks.values())
    return records


def _dask_pass(client, function: Callable[..., Record], tasks: dict[int, Task],
               indices: list[int], records: dict[int, Record], notify: Notify) -> list[int]:
    """Run these tasks on the cluster; return those Dask gave up on (`KilledWorker`).

    Every other task's record is stored and notified.
    """
    from distributed import KilledWorker, as_completed

    futures = {client.submit(function, *_absolute(tasks[index]), pure=False): index
               for index in indices}
    suspects: list[int] = []
    for future in as_completed(futures):
        index = futures[future]
        _collect(future, index, tasks, records, notify, suspects, KilledWorker,
                 input=tasks[index].path)
    return sorted(suspects)


def _absolute(task: Task) -> Task:
    """The task with absolute paths: a cluster's workers do not share our directory."""
    names = ("crds_path", "override_dq", "user_dq", "output_dir", "output")
    absolute = {name: os.path.abspath(getattr(task.settings, name)) for name in names
                if getattr(task.settings, name)}
    return Task(os.path.abspath(task.path), replace(task.settings, **absolute), task.selection)


def _remove_temporaries(targets: Iterable[Path]) -> None:
    """Delete the temporary files that killed workers left beside these outputs.

    Called only when no task of the run is writing: a live writer's file is never taken.
    """
    names: dict[Path, set[str]] = defaultdict(set)
    for target in targets:
        names[target.parent].add(target.name)
    for folder, expected in names.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            match = _TEMPORARY.fullmatch(entry.name)
            if match and match.group("name") in expected:
                Path(entry.path).unlink(missing_ok=True)
