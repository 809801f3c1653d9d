"""Policy sets: sources -> checked, compiled engine; and the set enabled on a ledger, with its versions.

A ledger's settings hold `policy_set` = {"id", "version", "files": {name: source}} (or None when disabled) and
`policy_history`, a bounded list of what was enabled or disabled when. The id is the sha256 of the canonical
sources, so every stored decision names exactly the text that made it. A set is compiled completely before
anything is written: a rejected set leaves the enabled one unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..core import limits
from ..core.errors import InputError
from ..core.hooks import LedgerView, Proposal
from ..core.records import Decision
from ..core.text import shown
from .check import check
from .data import DATA_SUFFIX
from .engine import PolicySetEngine
from .errors import Diagnostic, PolicyError, PolicySyntaxError
from .parser import parse, parse_partial
from .plan import warnings as plan_warnings

POLICY_SUFFIX = ".policy"


def set_id(files: dict[str, str]) -> str:
    """sha256 over the canonical form of the sources: names sorted, line endings normalised."""
    canonical = json.dumps(
        sorted((name, text.replace("\r\n", "\n")) for name, text in files.items()),
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def policy_files(paths: list[str | Path]) -> list[Path]:
    """Policy files named directly, or found (*.policy) in the directories named, in order."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        found = sorted(path.glob(f"*{POLICY_SUFFIX}")) if path.is_dir() else [path]
        if path.is_dir() and not found:
            raise InputError(f"no {POLICY_SUFFIX} files in {path}")
        out += found
    return out


def read_sources(paths: list[str | Path]) -> dict[str, str]:
    """The sources of `policy_files(paths)` and the reference data files they name (CSV files beside them);
    keys are file names, so a set's id does not depend on where its files were read from."""
    files: dict[str, str] = {}
    for file in policy_files(paths):
        text = read_policy_text(file)
        if file.name in files:
            raise InputError(f"two policy files are named {shown(file.name)}")
        files[file.name] = text
        for name in _data_names(text, file.name):
            data = file.parent / name
            if name in files or "/" in name or "\\" in name or not data.is_file():
                continue  # the checker says what is wrong with it, where the policy names it
            files[name] = read_data_text(data)
    data_count = sum(1 for name in files if name.endswith(DATA_SUFFIX))
    if data_count > limits.policy_data_files_max:
        raise InputError(f"{data_count} data files, over the limit of {limits.policy_data_files_max}")
    size = sum(len(text.encode("utf-8", "surrogatepass")) for text in files.values())
    if size > limits.policy_set_bytes_max:
        raise InputError(
            f"the set's files hold {size} bytes, over the limit of {limits.policy_set_bytes_max}"
        )
    return files


def _data_names(text: str, name: str) -> tuple[str, ...]:
    """The data files a policy names; none if it does not parse (parse_and_check reports that)."""
    try:
        return parse(text, name).data_files
    except PolicyError:
        return ()


def read_data_text(file: Path) -> str:
    if file.stat().st_size > limits.policy_data_file_bytes_max:
        message = f"data file over the limit of {limits.policy_data_file_bytes_max} bytes"
        raise PolicySyntaxError([Diagnostic(str(file), 1, 1, message)])
    try:
        return file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicySyntaxError([Diagnostic(str(file), 1, 1, f"not UTF-8 text: {exc.reason}")]) from None


def read_policy_text(file: Path) -> str:
    """One policy file's text; its size and encoding problems as located syntax errors."""
    if not file.is_file():
        raise InputError(f"no policy file {file}")
    if file.stat().st_size > limits.policy_file_bytes_max:
        message = f"file is over the limit of {limits.policy_file_bytes_max} bytes"
        raise PolicySyntaxError([Diagnostic(str(file), 1, 1, message)])
    data = file.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason})"
        raise PolicySyntaxError([Diagnostic(str(file), line, col, message)]) from None


def parse_and_check(files: dict[str, str]):
    """Parse every file (collecting every file's syntax errors), then check the set as a whole."""
    parsed, diags = [], []
    for name in sorted(files):
        if name.endswith(DATA_SUFFIX):
            continue
        try:
            parsed.append(parse(files[name], name))
        except PolicyError as exc:
            diags += exc.diagnostics
            partial = parse_partial(files[name], name, exc.diagnostics)
            if partial is not None:
                parsed.append(partial)
    data = {name: text for name, text in files.items() if name.endswith(DATA_SUFFIX)}
    if not diags:
        checked = check(parsed, data)
        checked.warnings.extend(plan_warnings(checked))
        return checked
    try:  # the rules that did parse are still checked, so every problem is reported at once
        check(parsed, data)
    except PolicyError as exc:
        raise PolicyError(diags + exc.diagnostics) from None
    raise PolicySyntaxError(diags)


def compile_sources(files: dict[str, str], version: int | None = None) -> PolicySetEngine:
    """A new engine for `files`, recording `version` in its decisions. Nothing is cached here, by design: an
    engine belongs to the ledger that loads it (the process-wide cache this replaced handed one engine to every
    ledger and overwrote its version)."""
    return PolicySetEngine(parse_and_check(files), set_id(files), version)


# ---- the set enabled on a ledger -----------------------------------------------------------------------------


class EnabledPolicy:
    """The policy set enabled on a ledger, owned by the ledger that loaded it: compiled the first time it decides
    (or is asked which windows it reads), then kept for the life of that ledger. A command that applies nothing
    (supply, balance, list) never compiles it; one that applies compiles it once, in ~20 ms for policies/ and
    under a second for the worst set within the limits (benchmarks/policy.py), since folding is linear.
    No compiled code is ever written to or read from disk."""

    def __init__(self, files: dict[str, str], policy_set_id: str, version: int | None) -> None:
        self._files = dict(files)
        self._policy_set_id = policy_set_id
        self._version = version
        self._engine: PolicySetEngine | None = None
        self._failure: str | None = None

    @property
    def policy_set_id(self) -> str:
        return self._policy_set_id

    @property
    def version(self) -> int | None:
        return self._version

    def engine(self) -> PolicySetEngine:
        """The compiled engine; a set that no longer checks (stored before a stricter checker) raises a one-line
        error each time, which the ledger turns into a denial (fail closed)."""
        if self._engine is None and self._failure is None:
            try:
                self._engine = compile_sources(self._files, self._version)
            except PolicyError as exc:
                first = exc.diagnostics[0]
                self._failure = (f"the enabled policy set (version {self._version}) does not check any more: "
                                 f"{first.file}:{first.line}:{first.col}: {first.message}")  # fmt: skip
        if self._engine is None:
            raise PolicyEngineUnavailable(self._failure or "")
        return self._engine

    def decide(self, proposal: Proposal, view: LedgerView) -> Decision:
        return self.engine().decide(proposal, view)

    @property
    def windows(self) -> frozenset:
        try:
            return self.engine().windows
        except PolicyEngineUnavailable:
            return frozenset()  # nothing to prefetch: every decision denies

    @property
    def filters(self) -> frozenset[str]:
        """The counterparty filters whose flows the ledger keeps while this set is enabled."""
        try:
            return self.engine().filters
        except PolicyEngineUnavailable:
            return frozenset()

    @property
    def activity(self) -> bool:
        """Whether the ledger keeps the unfiltered flows' snapshots while this set is enabled."""
        try:
            return self.engine().activity
        except PolicyEngineUnavailable:
            return False  # nothing is read: every decision denies


class PolicyEngineUnavailable(Exception):
    """The enabled set cannot be compiled; deciding with it denies (the ledger catches this per operation)."""


def load_enabled(settings: dict) -> EnabledPolicy | None:
    entry = settings.get("policy_set")
    if not entry:
        return None
    files = entry["files"]
    if set_id(files) != entry["id"]:
        raise PolicyError(
            [Diagnostic("<ledger settings>", 0, 0, "the enabled policy set does not match its id")]
        )
    return EnabledPolicy(files, entry["id"], entry.get("version"))


def history(settings: dict) -> list[dict]:
    return list(settings.get("policy_history") or [])


def enable(store, files: dict[str, str], at: int, note: str = "") -> dict:
    """Check and compile, then make `files` the enabled set as a new version. Raises before writing."""
    engine = compile_sources(files)
    settings = store.meta().settings
    current = settings.get("policy_set")
    if current and current.get("id") == engine.policy_set_id:
        store.rebuild_window_filters(engine.filters, activity=engine.activity)
        return {"id": current["id"], "version": current["version"], "changed": False}
    past = history(settings)
    version = max((h.get("version", 0) for h in past), default=0) + 1
    entry = {"id": engine.policy_set_id, "version": version, "files": files}
    record = {"action": "enable", "id": engine.policy_set_id, "version": version, "at": at,
              "files": files, "rules": len(engine.rules), "note": note}  # fmt: skip
    # The history the set reads (its counterparty-filtered flows, and the unfiltered flows' snapshots if any
    # window reads them) is built from the journal and the set goes live with it, in one transaction: its first
    # decision sees every earlier posting, and every writer, at its next chunk, both decides with the set and
    # keeps that history (ledger/service.py follows the settings). What it does not read is dropped.
    store.rebuild_window_filters(
        engine.filters,
        {"policy_history": (past + [record])[-limits.policy_set_versions_max :], "policy_set": entry},
        activity=engine.activity,
    )
    return {"id": engine.policy_set_id, "version": version, "changed": True, "rules": len(engine.rules),
            "warnings": [w.render() for w in engine.checked.warnings]}  # fmt: skip


def enable_version(store, version: int, at: int) -> dict:
    for record in reversed(history(store.meta().settings)):
        if record.get("version") == version and record.get("files"):
            return enable(store, record["files"], at, note=f"restored version {version}")
    raise InputError(f"no enabled version {version} in this ledger's policy history")


def disable(store, at: int) -> dict:
    settings = store.meta().settings
    current = settings.get("policy_set")
    if not current:
        return {"changed": False}
    record = {"action": "disable", "id": current["id"], "version": current["version"], "at": at}
    history_now = (history(settings) + [record])[-limits.policy_set_versions_max :]
    # no set reads the filtered flows or the activity snapshots now: dropped as the set goes, in one transaction
    store.rebuild_window_filters(
        frozenset(), {"policy_history": history_now, "policy_set": None}, activity=False
    )
    return {"changed": True, "id": current["id"], "version": current["version"]}
