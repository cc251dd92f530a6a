"""The README and docs/ against the code: every example they show must still work.

Nothing is run: YAML blocks go through the experiment loader, `clocklab` lines
through the real argument parser, `make` lines against the Makefile's targets
and variables, links against the files and headings they point to. The
conventions are in docs/README.md ("How the pages are kept true").
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from analysis.check.fates import FATES
from analysis.check.verdict import Rule, Verdict
from bench.report import TABLE_BEGIN, TABLE_END, performance_page
from orchestrator.cli import build_parser
from orchestrator.errors import ConfigError
from orchestrator.experiment import Experiment
from orchestrator.sweep_spec import parse_sweep

ROOT = Path(__file__).resolve().parents[2]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
PACKAGES = ("vm_node", "analysis", "orchestrator")
README_MAX_LINES = 200
FENCE = re.compile(r"^(\s*)(```|~~~)\s*(.*)$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
SHELL_OPERATORS = set("();<>|&")


@dataclass(frozen=True, slots=True)
class Block:
    """A code block of a page: its info string ("" when indented or bare) and its lines."""

    page: Path
    first_line: int  # the line number of the block's first line of code
    info: str
    lines: tuple[str, ...]

    def where(self, offset: int = 0) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.first_line + offset}"


def code_blocks(page: Path) -> Iterator[Block]:
    """Fenced blocks, and indented blocks (4 spaces or more, after a blank line)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            indent, marker, info = fence.groups()
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith(marker):
                end += 1
            body = tuple(line.removeprefix(indent) for line in lines[i + 1 : end])
            yield Block(page, i + 2, info.strip(), body)
            i = end + 1
            continue
        indented = lines[i].startswith("    ") and lines[i].strip()
        if indented and (i == 0 or not lines[i - 1].strip()):
            end = i
            while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                end += 1
            yield Block(page, i + 1, "", tuple(line.strip() for line in lines[i:end]))
            i = end
            continue
        i += 1


def prose(page: Path) -> Iterator[tuple[int, str]]:
    """The lines outside code blocks, numbered from 1."""
    inside: str | None = None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(line)
        if fence and inside is None:
            inside = fence.group(2)
        elif inside is not None and line.strip().startswith(inside):
            inside = None
        elif inside is None:
            yield number, line


def commands(block: Block, program: str) -> Iterator[tuple[str, list[str]]]:
    """Each line of a code block that runs `program`, as its words up to the first shell
    operator, comments dropped; with where it is."""
    for offset, line in enumerate(block.lines):
        text = line.strip().removeprefix("$ ")
        if not text.startswith(program + " ") and text != program:
            continue
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = []
        for word in lexer:
            if set(word) <= SHELL_OPERATORS:
                break
            words.append(word)
        yield block.where(offset), words[1:]


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in code_blocks(page)]


def inline_make_lines() -> Iterator[tuple[str, list[str]]]:
    """`make ...` in the prose's code spans: a shell line too, though not in a block."""
    for page in PAGES:
        for number, line in prose(page):
            for span in INLINE_CODE.findall(line):
                if span.startswith("`make "):
                    block = Block(page, number, "", (span.strip("`"),))
                    yield from commands(block, "make")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# --- YAML ------------------------------------------------------------------------------


def check_yaml(block: Block) -> str | None:
    """Why a ```yaml block is not an experiment (or, marked fragment, part of one)."""
    words = block.info.split()
    try:
        data = yaml.safe_load("\n".join(block.lines))
    except yaml.YAMLError as e:
        return f"{block.where()}: not valid YAML: {e}"
    if "fragment" in words[1:]:
        if not isinstance(data, dict):
            return f"{block.where()}: a fragment must be a mapping of experiment fields"
        data = {"name": "fragment", **data}
    try:
        experiment = Experiment.from_mapping(data, block.where())
        if isinstance(data, dict) and "sweep" in data:
            parse_sweep(data["sweep"], block.where()).cells(experiment)
    except ConfigError as e:
        return str(e)
    return None


def yaml_blocks(page: Path) -> list[Block]:
    return [b for b in code_blocks(page) if b.info.split()[:1] in (["yaml"], ["yml"])]


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_yaml_block_loads_as_an_experiment(page: Path) -> None:
    problems = [p for b in yaml_blocks(page) if (p := check_yaml(b)) is not None]
    assert not problems, "\n".join(problems)


def test_a_wrong_yaml_block_is_caught_naming_the_field() -> None:
    page = ROOT / "docs" / "experiments.md"
    wrong = Block(page, 1, "yaml fragment", ("faults:", "  - {kind: kill, at: 10, target: 9}"))
    problem = check_yaml(wrong)
    assert problem is not None and "faults[0]" in problem
    whole = Block(page, 1, "yaml", ("vms: 3",))  # a whole experiment needs its name
    assert "name" in (check_yaml(whole) or "")


# --- clocklab lines --------------------------------------------------------------------


def check_clocklab(where: str, argv: list[str]) -> str | None:
    """Why `clocklab ARGV` does not parse, in argparse's words; nothing is run."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit:
        said = errors.getvalue().strip().splitlines()
        return f"{where}: clocklab {' '.join(argv)}: {said[-1] if said else 'refused'}"
    return None


def test_every_clocklab_line_shown_parses() -> None:
    lines = [line for block in all_blocks() for line in commands(block, "clocklab")]
    assert len(lines) > 10, "the pages show clocklab commands: the block reader missed them"
    problems = [p for where, argv in lines if (p := check_clocklab(where, argv)) is not None]
    assert not problems, "\n".join(problems)


def test_a_clocklab_line_that_does_not_parse_is_named() -> None:
    assert check_clocklab("x.md:1", ["up", "--trial", "1"]) is None
    problem = check_clocklab("x.md:1", ["up", "--trail", "1"])
    assert problem is not None and problem.startswith("x.md:1: clocklab up --trail 1:")
    assert "--trail" in problem


# --- make lines ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Makefile:
    targets: frozenset[str]
    variables: frozenset[str]

    @classmethod
    def read(cls, path: Path) -> Makefile:
        text = path.read_text(encoding="utf-8")
        targets: set[str] = set()
        for line in text.splitlines():
            rule = re.match(r"^([A-Za-z0-9_.-]+(?:[ \t]+[A-Za-z0-9_.-]+)*)[ \t]*:(?!=)", line)
            if rule:
                targets.update(rule.group(1).split())
        assigned = re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?|:|\+)?=", text, re.MULTILINE)
        read = re.findall(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]", text)
        return cls(
            frozenset(t for t in targets if not t.startswith(".")), frozenset(assigned + read)
        )

    def check(self, where: str, argv: list[str]) -> str | None:
        """Why `make ARGV` names something the Makefile does not have."""
        for word in argv:
            name, is_variable, _ = word.partition("=")
            if is_variable and name not in self.variables:
                return f"{where}: make {' '.join(argv)}: the Makefile never reads {name}"
            if not is_variable and word not in self.targets:
                return f"{where}: make {' '.join(argv)}: no target {word!r} in the Makefile"
        return None


MAKEFILE = Makefile.read(ROOT / "Makefile")


def test_every_make_line_shown_names_a_real_target() -> None:
    lines = [line for block in all_blocks() for line in commands(block, "make")]
    lines += inline_make_lines()
    assert len(lines) > 5, "the pages show make commands: the block reader missed them"
    problems = [p for where, argv in lines if (p := MAKEFILE.check(where, argv)) is not None]
    assert not problems, "\n".join(problems)


def test_a_make_line_with_a_wrong_target_or_variable_is_named() -> None:
    assert {"test", "up", "bench", "cluster"} <= MAKEFILE.targets
    assert {"TRIAL", "ONLY", "HOSTS"} <= MAKEFILE.variables
    assert MAKEFILE.check("x.md:1", ["up", "TRIAL=1"]) is None
    assert "no target 'tests'" in (MAKEFILE.check("x.md:1", ["tests"]) or "")
    assert "never reads TRAIL" in (MAKEFILE.check("x.md:1", ["up", "TRAIL=1"]) or "")


def test_the_readme_gives_make_test_as_the_test_command() -> None:
    readme = ROOT / "README.md"
    shown = [argv for block in code_blocks(readme) for _, argv in commands(block, "make")]
    assert ["test"] in shown


def test_the_readme_stays_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


# --- links -----------------------------------------------------------------------------


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", INLINE_CODE.sub(lambda m: m.group(0)[1:-1], heading).lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(m.group(1)) for _, line in prose(page) if (m := HEADING.match(line))}


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of `page` whose file or heading is missing, named from `root`."""
    problems = []
    for number, line in prose(page):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(root)}:{number}"
            if not linked.exists():
                problems.append(f"{where}: {target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{where}: {target}: no heading #{anchor} in {linked.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_points_to_a_file_and_heading(page: Path) -> None:
    assert not (problems := broken_links(page)), "\n".join(problems)


def test_a_broken_link_is_named(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A heading\n\n## The `wire` rules\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md#the-wire-rules) [gone](nowhere.md) [bad](there.md#the-wire)\n"
        "```\n[ignored](in-code.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page, root=tmp_path) == [
        "page.md:1: nowhere.md: no such file",
        "page.md:1: there.md#the-wire: no heading #the-wire in there.md",
    ]


# --- what the pages list -------------------------------------------------------------


def docs_text(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def test_the_checker_page_names_every_rule_fate_and_verdict() -> None:
    text = docs_text("checker.md")
    rows = set(re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE))
    assert not (missing := {r.value for r in Rule} - rows), f"checker.md lacks rules {missing}"
    assert not (missing := {f.value for f in FATES} - rows), f"checker.md lacks fates {missing}"
    headings = {
        m.group(1).lower()
        for _, line in prose(ROOT / "docs" / "checker.md")
        if (m := HEADING.match(line))
    }
    assert {v.value for v in Verdict} <= headings, "checker.md gives an example of each verdict"


def test_the_model_page_names_every_fate() -> None:
    text = docs_text("model.md")
    assert not (missing := [f.value for f in FATES if f"`{f.value}`" not in text]), missing


def test_the_experiments_page_names_every_shipped_experiment() -> None:
    text = docs_text("experiments.md")
    shipped = sorted(p.name for p in (ROOT / "experiments").glob("*.yaml"))
    assert not (missing := [name for name in shipped if f"{name}`" not in text]), missing


# --- the module map and the bench's page -----------------------------------------------


def test_the_module_map_names_every_module_and_no_other() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:" + "|".join(PACKAGES) + r")/[\w/]*?(?:\.py|/))`", text))
    modules = {
        str(p.relative_to(ROOT))
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    }
    subpackages = {
        str(p.parent.relative_to(ROOT)) + "/"
        for package in PACKAGES
        for p in (ROOT / package).rglob("*/__init__.py")
    }
    on_disk = modules | subpackages
    assert not (missing := sorted(on_disk - named)), f"docs/architecture.md misses {missing}"
    assert not (gone := sorted(named - on_disk)), f"docs/architecture.md names {gone}"


def test_the_performance_page_has_the_lines_the_bench_writes_between() -> None:
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    assert page.count(TABLE_BEGIN) == 1 and page.count(TABLE_END) == 1
    assert page.index(TABLE_BEGIN) < page.index(TABLE_END)


def test_the_bench_replaces_only_its_table() -> None:
    page = f"# Performance\n\nProse.\n\n{TABLE_BEGIN}\nold table\n{TABLE_END}\n\nMore prose.\n"
    table = "| benchmark | figure |\n|---|---|\n| codec | 1 µs |\n"
    written = performance_page(page, table, "2026-12-05 01:00 UTC", "2 CPUs")
    before, _, rest = written.partition(TABLE_BEGIN)
    inside, _, after = rest.partition(TABLE_END)
    assert before == "# Performance\n\nProse.\n\n"
    assert after == "\n\nMore prose.\n"
    assert "old table" not in inside
    assert "2026-12-05 01:00 UTC, on 2 CPUs" in inside and table.rstrip() in inside
    assert performance_page(written, table, "2026-12-05 01:00 UTC", "2 CPUs") == written
    with pytest.raises(ValueError, match="lines to write the table between"):
        performance_page("# no markers\n", table, "now", "here")
