#!/usr/bin/env python3
"""Mutation testing of the modules that carry iotpipe's guarantees (mutmut), group by group.

Each group mutates some modules and runs the tests meant to pin them down; every group works in
its own copy of the repository (``.mutation/<group>``, git-ignored), so the groups keep their
own caches and a rerun only tests what changed. Each group's verdicts are kept in the
repository (``tests/mutation_state/<group>``: after every run and every summary; commit them),
and a fresh copy starts from them, so a run longer than one machine's life goes on where the
last one stopped. Needs MariaDB on 127.0.0.1:3306 (the storage
and ingest groups). Slow - hours, not minutes - so it is not part of .ci/run.

Usage::

    scripts/mutation                  # every group, then the summary
    scripts/mutation readers cleaning # some groups
    scripts/mutation --summary        # only the summary of the last runs (and keep them)
    scripts/mutation readers --survivors  # test the unexplained survivors again (new tests)
    scripts/mutation storage --sample 100 # 100 untested mutants drawn at random (seeded)
    scripts/mutation ingest --only '*x__read__*' # the untested mutants of some functions

The summary counts a mutant killed when a test failed, the type checker (mypy, part of
scripts/test) rejected it, it timed out, or the tests' process crashed; the surviving
mutants explained as equivalent are listed with the reason in
``tests/mutation_equivalent.txt``; every other survivor is printed.
Mutants a stopped run did not reach, and mutants of functions no test of the group's
selection runs ("no tests": they belong to other features, tested by other files), are counted
apart; "tested" is the rest. The score is killed / (tested - equivalent).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
# Each group's verdicts, kept in the repository: a full run of the storage group takes longer
# than one working session, and a machine's .mutation/ does not outlive it. mutmut re-tests a
# kept verdict only when its function (by hash) or the group's test selection changed.
STATE = ROOT / "tests" / "mutation_state"
EQUIVALENT = ROOT / "tests" / "mutation_equivalent.txt"
MUTMUT = ROOT / ".venv" / "bin" / "mutmut"

# Tests that cannot see a mutant (they run iotpipe in a subprocess, which imports the unmutated
# package) or that mostly wait (retries to a dead-letter queue, a 16 MB multipart upload): they
# cost minutes per mutant and kill nothing the others do not.
NEVER = [
    "tests/integration/test_store.py::test_host_time_zone_does_not_change_stored_values",
    "tests/integration/test_trust.py::test_a_killed_ingest_does_not_lock_its_file_out",
    "tests/integration/test_demo.py",
    "tests/integration/test_page.py",
    "tests/unit/test_hostile_input.py::test_a_gigabyte_line_in_a_small_gzip_stays_under_512_mb",
    "tests/integration/test_ingest_lambda.py::test_an_unreachable_database_is_retried_then_dead_lettered",
    "tests/integration/test_ingest_lambda.py::test_gzipped_multipart_upload_under_an_odd_key_loads_exactly",
]
STORAGE_TESTS = [
    "tests/unit/test_spill.py",
    "tests/unit/test_file_load.py",  # batches staged in a worker, written in order
    "tests/integration/test_row_order.py",
    "tests/integration/test_store.py",
    "tests/integration/test_trust.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_mysql_faults.py",
    "tests/integration/test_pitfalls.py",
    "tests/integration/test_engines_agree.py",
    # The listings, buckets and users live in the storage modules too (the run measured in
    # docs/testing.md did not select these: its "no test in selection" column).
    "tests/integration/test_browse_and_buckets.py",
    "tests/integration/test_tls_and_rotation.py",
    "tests/unit/test_connection.py",  # retries' backoff, the SQLite path's folders
    "tests/unit/test_stats.py",  # the median's midpoint and the overflowing mean's scale
]


@dataclass(frozen=True)
class Group:
    """Modules to mutate and the tests that should kill their mutants."""

    modules: list[str]
    tests: list[str]


GROUPS = {
    "readers": Group(["src/iotpipe/readers/*.py"], ["tests/unit"]),
    "cleaning": Group(
        [
            "src/iotpipe/clean.py",
            "src/iotpipe/dedupe.py",
            "src/iotpipe/values.py",
            "src/iotpipe/timestamps.py",
            "src/iotpipe/quality.py",
        ],
        ["tests/unit"],
    ),
    "storage": Group(
        [
            "src/iotpipe/storage/ledger.py",
            "src/iotpipe/storage/readings.py",
            "src/iotpipe/storage/store.py",
            "src/iotpipe/storage/database.py",
            "src/iotpipe/storage/mysql.py",
            "src/iotpipe/storage/sqlite.py",
            "src/iotpipe/storage/spill.py",
        ],
        # The retrieval Lambda's tests read pages, statistics and ranges through `Readings`.
        # Only this group selects them, so the ingest group's kept verdicts stand.
        [*STORAGE_TESTS, "tests/integration/test_retrieve_lambda.py"],
    ),
    "ingest": Group(
        ["src/iotpipe/ingest.py"],
        [
            *STORAGE_TESTS,
            "tests/integration/test_ingest_lambda.py",
            "tests/integration/test_large_files.py",
            "tests/integration/test_backfill.py",  # Batch Operations tasks: a version asked by id
            "tests/unit/test_ingest_service.py",  # retries' time check, a dry run's clock
        ],
    ),
    # Category codes: in the order values show up, learned ahead of a merge that encodes
    # later (a spilled file), the same codes either way.
    "encode": Group(
        ["src/iotpipe/encode.py"],
        [
            "tests/unit/test_encode.py",
            "tests/unit/test_spill.py",
            "tests/unit/test_file_load.py",
            "tests/integration/test_row_order.py",
        ],
    ),
    # The threads that read ahead of the load and of a spilled merge, and the permits that
    # bound them (unit tests: each runs in a second or two).
    "prefetch": Group(
        ["src/iotpipe/prefetch.py"],
        [
            "tests/unit/test_prefetch.py",
            "tests/unit/test_ingest_service.py",
            "tests/unit/test_spill.py",
            "tests/unit/test_file_load.py",
        ],
    ),
}
# "segfault": the tests' process died under the mutant (one that loops, taking memory, say):
# the test run fails, so the mutant is noticed, as a timeout is.
KILLED = {"killed", "caught by type check", "timeout", "segfault"}
# What the tests read besides the package and the tests (mutmut copies only what it is told).
ALSO_COPY = [
    "contracts",
    "events",
    "openapi.yaml",
    "template.yaml",
    "samconfig.toml",
    ".checkov.yaml",
    "bench",
    "scripts",
    "docs",
    "deploy",
    "src/Makefile",
    "src/requirements",
]


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def prepare(name: str, group: Group) -> Path:
    """Copy the working tree (tracked and untracked, not ignored) and write the group's config."""
    where = WORK / name
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    kept = STATE.relative_to(ROOT).as_posix() + "/"
    for rel in filter(None, files):
        if rel.startswith(kept):  # the verdicts go to <copy>/mutants (restore_state), not here
            continue
        source, target = ROOT / rel, where / rel
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists() or target.read_bytes() != source.read_bytes():
                shutil.copy2(source, target)
    deselect = [arg for test in NEVER for arg in ("--deselect", test)]
    config = (
        (ROOT / "pyproject.toml").read_text()
        + f"""
[tool.mutmut]
source_paths = ["src/iotpipe"]
only_mutate = {_toml_list(group.modules)}
pytest_add_cli_args_test_selection = {_toml_list(group.tests)}
pytest_add_cli_args = {_toml_list(deselect)}
process_isolation = "forkserver"
type_check_command = ["mypy", "src/iotpipe", "--output", "json", "--no-warn-unused-ignores"]
also_copy = {_toml_list(ALSO_COPY)}
"""
    )
    (where / "pyproject.toml").write_text(config)
    restore_state(name)
    return where


def _state_files(mutants: Path) -> list[Path]:
    """Return the files that hold a group's verdicts: mutmut's stats, a ``.meta`` per module."""
    kept = [mutants / "mutmut-stats.json", *sorted((mutants / "src").rglob("*.meta"))]
    return [path for path in kept if path.is_file()]


def restore_state(name: str) -> None:
    """Start a fresh copy from the verdicts kept in the repository (none kept: from scratch)."""
    mutants, kept = WORK / name / "mutants", STATE / name
    if mutants.exists() or not kept.exists():
        return
    for path in kept.rglob("*"):
        if path.is_file():
            into = WORK / name if path.name == "sample.txt" else mutants
            target = into / path.relative_to(kept)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def save_state(name: str) -> None:
    """Keep the group's verdicts in the repository (tests/mutation_state/<group>), to commit."""
    mutants, kept = WORK / name / "mutants", STATE / name
    if not mutants.exists():
        return
    shutil.rmtree(kept, ignore_errors=True)
    sample = WORK / name / "sample.txt"
    for path in _state_files(mutants) + ([sample] if sample.exists() else []):
        target = kept / (path.name if path == sample else path.relative_to(mutants))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def run(name: str, children: int, survivors: bool = False, sample: int = 0, only: str = "") -> None:
    where = prepare(name, GROUPS[name])
    # A plain run tests new and changed mutants only; --survivors tests the survivors again
    # (after new tests: mutmut keeps a verdict unless the mutant is named), except those
    # explained as equivalent: no test can kill them, and each survivor runs every test that
    # covers its function.
    explained = equivalent()
    again = (
        [
            m
            for m, s in results(name).items()
            if s not in KILLED | UNTESTED | {NO_TESTS} and m not in explained
        ]
        if survivors
        else []
    )
    if survivors and not again:
        return
    if sample:
        again = draw(name, sample)
        if not again:
            return
    if only:  # a changed function's mutants first, before the rest of a long group
        again = fnmatch.filter(untested(name), only)
        if not again:
            return
    env = {
        **os.environ,
        "IOTPIPE_MUTATION": "1",
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    forget_callers(where / "mutants")
    print(f"== {name}: mutmut run in {where}", flush=True)
    subprocess.run(
        [str(MUTMUT), "run", "--max-children", str(children), *again],
        cwd=where,
        env=env,
        check=False,
    )
    save_state(name)


def forget_callers(mutants: Path) -> None:
    """Make mutmut trace again which tests call each function; keep the functions' hashes.

    mutmut traces only tests it has not seen before, so a function added since the last run
    (or newly called by an old test) would be run by none of the old tests that reach it:
    its mutants "survive" untested (98 of `timestamps._canonical`'s did, 2026-12-06). The
    hashes stay: they are how mutmut knows which kept verdicts a changed function voids.
    """
    stats = mutants / "mutmut-stats.json"
    if not stats.is_file():
        return  # a first run traces every test anyway
    kept = json.loads(stats.read_text())
    for key in ("tests_by_mangled_function_name", "duration_by_test", "function_dependencies"):
        kept[key] = {}
    stats.write_text(json.dumps(kept))


SAMPLE_SEED = 20261127


def untested(name: str) -> list[str]:
    """Return the group's mutants no run has tested yet, sorted."""
    return sorted(m for m, s in results(name).items() if s in UNTESTED)


def draw(name: str, size: int) -> list[str]:
    """Draw ``size`` of the group's untested mutants at random (seeded); remember the draw.

    For mutants too costly to test them all (the exactly-once core: every integration test
    runs it): the sample's score estimates theirs, and the summary reports it apart.
    """
    pool = untested(name)
    drawn = sorted(random.Random(SAMPLE_SEED).sample(pool, min(size, len(pool))))
    kept = WORK / name / "sample.txt"
    earlier = kept.read_text().split() if kept.exists() else []
    kept.write_text("\n".join(sorted({*earlier, *drawn})) + "\n")
    return drawn


def results(name: str) -> dict[str, str]:
    """Each mutant's verdict in the group's last run (mutant name -> status)."""
    where = WORK / name
    if not (where / "mutants").exists():
        return {}
    out = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"],
        cwd=where, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    verdicts = {}
    for line in out.splitlines():
        mutant, _, status = line.strip().rpartition(": ")
        if mutant:
            verdicts[mutant] = status
    return verdicts


def equivalent() -> dict[str, str]:
    """Return the survivors explained as equivalent: mutant name -> reason."""
    reasons = {}
    for line in EQUIVALENT.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            mutant, _, reason = line.partition(" ")
            reasons[mutant] = reason.strip()
    return reasons


UNTESTED = {"not checked"}
NO_TESTS = "no tests"  # no test of the group's selection runs the function (counted apart)


def summary(names: list[str]) -> int:
    explained = equivalent()
    print(
        "| group | mutants | not reached | no test in selection | tested | killed | equivalent "
        "| survived | score |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    unexplained: list[str] = []
    totals = [0, 0, 0, 0, 0, 0, 0]
    for name in names:
        if (WORK / name / "mutants").exists():
            save_state(name)  # a stopped run's verdicts are kept too
        elif (STATE / name).exists():
            prepare(name, GROUPS[name])  # a fresh machine: the verdicts kept in the repository
        verdicts = results(name)
        if not verdicts:
            continue
        reached = {m: s for m, s in verdicts.items() if s not in UNTESTED}
        uncovered = [m for m, s in reached.items() if s == NO_TESTS]
        tested = {m: s for m, s in reached.items() if s != NO_TESTS}
        killed = sum(status in KILLED for status in tested.values())
        same = [m for m, s in tested.items() if s not in KILLED and m in explained]
        left = [m for m, s in tested.items() if s not in KILLED and m not in explained]
        unexplained += [f"{m}: {tested[m]}" for m in left]
        counts = [
            len(verdicts), len(verdicts) - len(reached), len(uncovered),
            len(tested), killed, len(same), len(left),
        ]  # fmt: skip
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        print(f"| {name} | {' | '.join(map(str, counts))} | {_score(*counts[3:])} |")
        if uncovered:
            functions = sorted({m.rsplit("__mutmut_", 1)[0] for m in uncovered})
            print(f"<!-- {name}: no test of the selection runs {', '.join(functions)} -->")
    print(f"| all | {' | '.join(map(str, totals))} | {_score(*totals[3:])} |")
    for name in names:
        _sample_summary(name, explained)
    if unexplained:
        print(f"\n{len(unexplained)} surviving mutants are neither killed nor explained:")
        print("\n".join(sorted(unexplained)))
    return 0


def _sample_summary(name: str, explained: dict[str, str]) -> None:
    """Report the group's random sample of otherwise untested mutants (`draw`), if any."""
    kept = WORK / name / "sample.txt"
    if not kept.exists():
        return
    verdicts = results(name)
    drawn = [m for m in kept.read_text().split() if m in verdicts]
    tested = [m for m in drawn if verdicts[m] not in UNTESTED and verdicts[m] != NO_TESTS]
    killed = sum(verdicts[m] in KILLED for m in tested)
    same = sum(verdicts[m] not in KILLED and m in explained for m in tested)
    n = len(tested) - same
    if not n:
        return
    low, high = _wilson(killed, n)
    print(
        f"\n{name}: a random sample (seed {SAMPLE_SEED}) of {len(drawn)} mutants no full run "
        f"reached: {len(tested)} tested, {killed} killed, {same} equivalent -> "
        f"{100 * killed / n:.1f}% (95% Wilson interval {100 * low:.1f}-{100 * high:.1f}%); "
        "these verdicts are in the table above too."
    )


def _wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Return the Wilson score interval of a proportion (sound at 0 and n, unlike the normal)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _score(tested: int, killed: int, same: int, left: int) -> str:
    """Killed over tested, the equivalent ones left out."""
    return f"{100 * killed / (tested - same):.1f}%" if tested > same else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"some of: {', '.join(GROUPS)}")
    parser.add_argument("--summary", action="store_true", help="only print the summary")
    which = parser.add_mutually_exclusive_group()  # each picks the mutants to test
    which.add_argument(
        "--survivors", action="store_true", help="test the surviving mutants again (new tests)"
    )
    which.add_argument(
        "--sample",
        type=int,
        default=0,
        metavar="N",
        help="test N of the untested mutants drawn at random (reported apart)",
    )
    which.add_argument(
        "--only",
        default="",
        metavar="GLOB",
        help="test only the untested mutants whose names match (e.g. '*x__read__*')",
    )
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    names = args.groups or list(GROUPS)
    unknown = set(names) - set(GROUPS)
    if unknown:
        parser.error(f"unknown group(s): {', '.join(sorted(unknown))}")
    if not args.summary:
        for name in names:
            run(name, args.max_children, args.survivors, args.sample, args.only)
    sys.exit(summary(names))


if __name__ == "__main__":
    main()
