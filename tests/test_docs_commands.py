"""Every command, file and module the documentation shows exists in the code.

README.md and docs/**/*.md are scanned for code (fenced blocks and `inline` spans) holding:
- `python -m PKG SUB [SUBSUB] ...` for PKG in edge, gate_controller, provisioning, central (also
  `.venv/bin/python -m ...`): `PKG --help`, `PKG SUB --help` and, when SUB's help lists actions
  (`faces detect`, `sim fire`), `PKG SUB SUBSUB --help` must exit 0 (each distinct command run
  once, with this interpreter, from the repository root); a word in the action's place that is
  not one of them fails, and every `--flag` shown must be in the help of SUB or SUBSUB;
- `make TARGET`: the Makefile must have the target;
- paths under the project's folders (`edge/decisions/pipeline.py`, `bench/gate.py`,
  `tests/test_vision_*.py`, `edge/kiosk/static/`): the file, folder or glob must exist;
  an all-capitals part (`bench/NAME.py`) is a placeholder and matches any name;
- bare test file names (`test_gate_safety.py`): in tests/ or hw_tests/;
- dotted names (`foundation.settings.load_settings`, `from edge.kiosk.app import create_app`):
  the module file must exist and define the name (parsed, not imported);
- relative Markdown links: the file must exist, and the heading when the link names one.
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
CLI_PACKAGES = ("edge", "gate_controller", "provisioning", "central")
PACKAGES = ("foundation", "wire", "edge", "gate_controller", "central", "demo", "provisioning")
PATH_ROOTS = (*PACKAGES, "tests", "hw_tests", "bench", "models")

FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
INLINE = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")
PY_CMD = re.compile(r"(?<![\w/.-])(?:\.venv/bin/)?python(?:3(?:\.\d+)?)?\s+-m\s+("
                    + "|".join(CLI_PACKAGES) + r")(?![\w-])((?:\.\w+)*)(.*)")
MAKE = re.compile(r"(?<![\w.-])make\s+([a-z][\w-]*)")
PATH = re.compile(r"(?<![\w./~$-])((?:" + "|".join(PATH_ROOTS) + r")/[\w./*-]*)")
DOTTED = re.compile(r"(?<![\w./-])((?:" + "|".join(PACKAGES) + r")(?:\.[A-Za-z_]\w*)+)")
FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[\w \t,]+)",
                         re.M)
FILE_SUFFIXES = ("db", "key", "key_secret", "lock", "log", "jsonl", "json", "toml", "md", "py",
                 "csv", "txt", "png", "crt", "sock")
TEST_FILE = re.compile(r"(?<![\w/.*-])(test_\w+\.py)")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
WORD = re.compile(r"[a-z][a-z0-9_-]*")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _snippets(text: str) -> list[str]:
    """Code in a Markdown text: each fenced block's lines and each inline span, one string each."""
    out: list[str] = []
    for match in FENCE.finditer(text):
        out.extend(match.group(2).replace("\\\n", " ").splitlines())
    prose = FENCE.sub("", text)
    out.extend(" ".join(span.split()) for span in INLINE.findall(prose))
    return out


def _fenced(text: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(text)]


def _clean(token: str) -> str:
    return token.strip("[](){}<>,;:'\"")


def _commands() -> dict[tuple[str, ...], list[tuple[str, tuple[str, ...]]]]:
    """(module,) or (module, sub) -> [(doc, words after sub)]: every python -m command shown."""
    found: dict[tuple[str, ...], list[tuple[str, tuple[str, ...]]]] = {}
    for doc in DOCS:
        for snippet in _snippets(doc.read_text()):
            for match in PY_CMD.finditer(snippet):
                module = match.group(1) + match.group(2)
                rest = re.split(r"\s#|\s\|\s|;|&&|`", match.group(3))[0]
                words = [w for w in (_clean(w) for w in rest.split()) if w]
                key: tuple[str, ...] = (module,)
                if words and WORD.fullmatch(words[0]):
                    key, words = (module, words[0]), words[1:]
                found.setdefault(key, []).append((_rel(doc), tuple(words)))
    return found


COMMANDS = _commands()


def _help(key: tuple[str, ...]) -> tuple[int, str]:
    try:
        done = subprocess.run([sys.executable, "-m", *key, "--help"], cwd=ROOT, text=True,
                              capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    return done.returncode, done.stdout + done.stderr


def _actions(help_text: str) -> set[str]:
    """Sub-actions a help text lists under "positional arguments" (subparsers, choices)."""
    section = help_text.partition("positional arguments:")[2].partition("\noptions:")[0]
    names = set(re.findall(r"^ {4}([a-z][\w-]*)", section, re.M))
    for group in re.findall(r"^ {2}\{([\w,-]+)\}", section, re.M):
        names.update(group.split(","))
    return names


def _subsub(key: tuple[str, ...], words: tuple[str, ...], helps: dict) -> str | None:
    """The first word of a command that its subcommand's help lists as an action."""
    actions = _actions(helps[key][1]) if len(key) == 2 else set()
    return next((w for w in words if w in actions), None)


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, ...], tuple[int, str]]:
    """`python -m MODULE [SUB [SUBSUB]] --help` once per distinct command: (exit code, output)."""
    first = sorted({key[:n] for key in COMMANDS for n in range(1, len(key) + 1)})
    with ThreadPoolExecutor(max_workers=4) as pool:
        out = dict(zip(first, pool.map(_help, first), strict=True))
        second = sorted({(*key, sub) for key, uses in COMMANDS.items() if out[key][0] == 0
                         for _, words in uses if (sub := _subsub(key, words, out))})
        out.update(zip(second, pool.map(_help, second), strict=True))
    return out


def test_the_docs_show_commands():
    assert DOCS[0].exists() and len(DOCS) > 1, "README.md and docs/ are expected"
    assert {key[0] for key in COMMANDS} >= set(CLI_PACKAGES)


def _has_option(flag: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


@pytest.mark.parametrize("key", sorted(COMMANDS), ids=" ".join)
def test_documented_command_exists(key, helps):
    for n in range(1, len(key) + 1):
        code, output = helps[key[:n]]
        docs = ", ".join(sorted({doc for doc, _ in COMMANDS[key]}))
        assert code == 0, (f"`python -m {' '.join(key[:n])} --help` exited {code} "
                           f"(shown in {docs}):\n{output[-800:]}")
    wrong = []
    for doc, words in COMMANDS[key]:
        sub = _subsub(key, words, helps)
        known = helps[key][1]
        actions = _actions(known) if len(key) == 2 else set()
        if actions and not sub and words and WORD.fullmatch(words[0]):
            wrong.append(f"`{' '.join(key)}` has no action {words[0]!r} (in {doc}); "
                         f"it has {', '.join(sorted(actions))}")
        if sub:
            code, output = helps[(*key, sub)]
            if code != 0:
                wrong.append(f"`{' '.join((*key, sub))} --help` exited {code} (in {doc})")
            known += output
        flags = {w.split("=")[0] for w in words if re.fullmatch(r"--[a-z][\w=.:/-]*", w)}
        wrong += [f"{' '.join(key)}: no option {flag} (in {doc})"
                  for flag in sorted(flags - {"--help"}) if not _has_option(flag, known)]
    assert not wrong, "\n".join(sorted(set(wrong)))


def _makefile_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+(?:[ \t]+[A-Za-z0-9_.-]+)*)[ \t]*:(?!=)", line)
        if match:
            targets.update(match.group(1).split())
    return targets


def _occurrences(pattern: re.Pattern[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for doc in DOCS:
        for snippet in _snippets(doc.read_text()):
            for match in pattern.finditer(snippet):
                found.setdefault(match.group(1), set()).add(_rel(doc))
    return found


def test_documented_make_targets_exist():
    targets = _makefile_targets()
    missing = sorted(f"make {t} (in {', '.join(sorted(d))})"
                     for t, d in _occurrences(MAKE).items() if t not in targets)
    assert not missing, "no such Makefile target: " + "; ".join(missing)


def _path_exists(path: str) -> bool:
    pattern = "/".join(re.sub(r"^[A-Z][A-Z0-9_]*(?=\.|$)", "*", p) for p in path.split("/"))
    if "*" in pattern:
        return any(ROOT.glob(pattern.rstrip("/")))
    return (ROOT / pattern).exists()


def test_documented_paths_exist():
    missing = []
    for raw, docs in sorted(_occurrences(PATH).items()):
        path = raw.rstrip(".:,")
        if not (path.endswith("/") or re.search(r"\.\w+$", path)):
            continue  # prose such as `tests/` fragments or `edge/...` ellipses
        if "..." in path:
            continue
        if not _path_exists(path):
            missing.append(f"{path} (in {', '.join(sorted(docs))})")
    assert not missing, "no such file or folder:\n" + "\n".join(missing)


def test_documented_test_files_exist():
    missing = sorted(f"{name} (in {', '.join(sorted(docs))})"
                     for name, docs in _occurrences(TEST_FILE).items()
                     if not any((ROOT / d / name).exists() for d in ("tests", "hw_tests")))
    assert not missing, "no such test file in tests/ or hw_tests/: " + "; ".join(missing)


@functools.cache
def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _defined(module: str) -> frozenset[str]:
    """Top-level names a module defines or imports (parsed, never imported)."""
    path = _module_file(module)
    assert path is not None
    names: set[str] = set()
    body = list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.If | ast.Try):
            body.extend(node.body)
            body.extend(getattr(node, "orelse", []))
    return frozenset(names)


def _resolves(dotted: str) -> str | None:
    """None when `a.b.c[.name]` is a module or a name a module defines; else what is wrong."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        if _module_file(module) is None:
            continue
        rest = parts[cut:]
        if not rest or rest[0] in _defined(module):
            return None
        return f"{module} defines no {rest[0]}"
    return "no such module"


def test_documented_modules_and_names_exist():
    wanted: dict[str, set[str]] = {}
    for dotted, docs in _occurrences(DOTTED).items():
        if dotted.rsplit(".", 1)[1] not in FILE_SUFFIXES:
            wanted.setdefault(dotted, set()).update(docs)
    for doc in DOCS:
        for block in _fenced(doc.read_text()):
            for module, names in FROM_IMPORT.findall(block):
                if module.split(".")[0] in PACKAGES:
                    for item in names.strip("()").split(","):
                        name = item.split(" as ")[0].strip()
                        if not name:
                            continue
                        wanted.setdefault(f"{module}.{name}", set()).add(_rel(doc))
    wrong = sorted(f"{dotted}: {why} (in {', '.join(sorted(wanted[dotted]))})"
                   for dotted in wanted if (why := _resolves(dotted)))
    assert not wrong, "\n".join(wrong)


def _slug(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    text = FENCE.sub("", doc.read_text())
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def test_relative_links_resolve():
    broken = []
    for doc in DOCS:
        for target in LINK.findall(FENCE.sub("", doc.read_text())):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file_part, _, anchor = target.partition("#")
            dest = (doc.parent / file_part).resolve() if file_part else doc
            if not dest.exists():
                broken.append(f"{_rel(doc)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{_rel(doc)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
