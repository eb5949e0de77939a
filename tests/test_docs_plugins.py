"""docs/plugins.md keeps up with the plugin interface (in the spirit of datasette's
test_docs.py): every hook in teledrop/plugins/hookspecs.py has a section whose signature
names exactly the spec's parameters, describes each of them and states the calling
convention the spec declares; every Python block compiles, every hook example registers
against the real specs, every TOML block parses, and every relative link resolves; and its
reference (every field of a drop, every error, the slug rules, where hooks run) is the
code's."""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import tomllib
import types
from dataclasses import dataclass
from pathlib import Path
from types import FunctionType

import pluggy
import pytest

from teledrop.core import errors, inspection, service, slugs
from teledrop.core.content import BlobContent
from teledrop.core.drop import JSON_FIELDS, Drop
from teledrop.core.inspection import Inspector
from teledrop.plugins import commit_chain, hookspecs
from teledrop.plugins.manager import ENTRY_POINT_GROUP, PROJECT

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
TEXT = DOC.read_text()
SECTION_HEADING = re.compile(r"^### `(teledrop_\w+)\((.*)\)`$", re.MULTILINE)
FIRSTRESULT = "first non-None result"


@dataclass(frozen=True)
class Block:
    lang: str
    line: int
    code: str


def code_blocks() -> list[Block]:
    return [Block(m["lang"], TEXT.count("\n", 0, m.start()) + 1, m["code"])
            for m in re.finditer(r"^```(?P<lang>\w*)\n(?P<code>.*?)^```$", TEXT,
                                 re.MULTILINE | re.DOTALL)]


BLOCKS = code_blocks()
PYTHON = [b for b in BLOCKS if b.lang == "python"]
HOOK_EXAMPLES = [b for b in PYTHON if re.search(r"^@hookimpl", b.code, re.MULTILINE)]
TOML = [b for b in BLOCKS if b.lang == "toml"]
SPECS = [obj for _, obj in inspect.getmembers(hookspecs, inspect.isfunction)
         if getattr(obj, "teledrop_spec", None) is not None]


def block_id(block: Block) -> str:
    return f"line-{block.line}"


def spec_id(spec: FunctionType) -> str:
    return spec.__name__


def sections() -> dict[str, tuple[list[str], str]]:
    """Hook name -> (parameters in its heading, text of its section without the heading)."""
    found: dict[str, tuple[list[str], str]] = {}
    for match in SECTION_HEADING.finditer(TEXT):
        assert match[1] not in found, f"{match[1]} has two sections"
        end = re.compile(r"^#{1,3} ", re.MULTILINE).search(TEXT, match.end())
        body = TEXT[match.end():end.start() if end else len(TEXT)]
        params = [p.strip() for p in match[2].split(",") if p.strip()]
        found[match[1]] = (params, body)
    return found


SECTIONS = sections()


def prose(text: str) -> str:
    """The text without its code blocks: a parameter must be described, not just used."""
    return re.sub(r"^```.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)


def test_the_doc_has_hook_sections_and_examples() -> None:
    assert len(SPECS) >= 10
    assert len(SECTIONS) >= 10 and len(PYTHON) >= 10 and len(HOOK_EXAMPLES) >= 10


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_every_hook_has_a_section_with_its_exact_signature(spec: FunctionType) -> None:
    assert spec.__name__ in SECTIONS, f"docs/plugins.md: no `### `{spec.__name__}(...)`` section"
    params, _ = SECTIONS[spec.__name__]
    assert params == list(inspect.signature(spec).parameters), spec.__name__


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_every_parameter_is_described_in_its_section(spec: FunctionType) -> None:
    _, body = SECTIONS[spec.__name__]
    for name in inspect.signature(spec).parameters:
        assert f"`{name}`" in prose(body), f"{spec.__name__}: `{name}` is not described"


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_section_states_the_spec_calling_convention(spec: FunctionType) -> None:
    _, body = SECTIONS[spec.__name__]
    assert "**Calling convention:**" in body, spec.__name__
    assert "**Called:**" in body, spec.__name__
    firstresult = spec.teledrop_spec["firstresult"]  # type: ignore[attr-defined]
    assert (FIRSTRESULT in body) == firstresult, spec.__name__


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_section_has_an_example_implementing_the_hook(spec: FunctionType) -> None:
    _, body = SECTIONS[spec.__name__]
    assert re.search(rf"^```python\n.*?^def {spec.__name__}\(", body, re.MULTILINE | re.DOTALL), \
        f"{spec.__name__}: no example"


def test_no_section_documents_a_hook_that_does_not_exist() -> None:
    assert set(SECTIONS) <= {s.__name__ for s in SPECS}


def test_conventions_table_names_every_hook_once() -> None:
    table = TEXT.split("## Calling conventions", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| **")]
    named = [hook for row in rows for hook in re.findall(r"`(teledrop_\w+)`", row.split("|")[2])]
    assert sorted(named) == sorted(s.__name__ for s in SPECS)
    firstresult_row = next(row for row in rows if row.startswith("| **first result**"))
    assert {hook for hook in re.findall(r"`(teledrop_\w+)`", firstresult_row)} == {
        s.__name__ for s in SPECS if s.teledrop_spec["firstresult"]}  # type: ignore[attr-defined]


def test_the_doc_names_the_real_entry_point_group_and_marker() -> None:
    assert f"[project.entry-points.{ENTRY_POINT_GROUP}]" in TEXT
    assert "from teledrop import hookimpl" in TEXT
    assert f'HookimplMarker("{PROJECT}")' in TEXT


@pytest.mark.parametrize("block", PYTHON, ids=block_id)
def test_python_block_compiles(block: Block) -> None:
    compile(block.code, f"{DOC}:{block.line}", "exec")


@pytest.mark.parametrize("block", HOOK_EXAMPLES, ids=block_id)
def test_hook_example_registers_against_the_specs(block: Block,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Executed as a module and registered with teledrop's specs: a misspelt hook or an
    argument the hook does not offer fails here as it would at start-up."""
    module = types.ModuleType(f"docs_example_{block.line}")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look it up
    exec(compile(block.code, f"{DOC}:{block.line}", "exec"), module.__dict__)
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(module)
    pm.check_pending()
    defined = {name for name, value in vars(module).items()
               if name.startswith("teledrop_") and callable(value)}
    implemented = {caller.name for caller in pm.get_hookcallers(module) or []}
    assert defined and defined == implemented, f"line {block.line}: {defined ^ implemented}"


@pytest.mark.parametrize("block", TOML, ids=block_id)
def test_toml_block_parses(block: Block) -> None:
    tomllib.loads(block.code)


def test_relative_links_resolve() -> None:
    anchors = {re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", TEXT, re.MULTILINE)}
    links = re.findall(r"\]\(([^)\s]+)\)", TEXT)
    assert links
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        if link.startswith("#"):
            assert link[1:] in anchors, link
        else:
            assert (DOC.parent / link).exists(), link


# --- the reference section, checked against the code -----------------------------------

REFERENCE = TEXT.split("\n## Reference\n", 1)[1]


def subsection(title: str) -> str:
    return REFERENCE.split(f"\n### {title}\n", 1)[1].split("\n### ", 1)[0]


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the markdown tables in ``text``, cells stripped (``\\|`` kept as
    ``|``)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip().replace("\\|", "|")
                     for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            rows.append(cells)
    return rows[1:] if rows else rows  # the header row


def prose_of(text: str) -> str:
    return " ".join(prose(text).split())


def test_every_field_of_a_drop_is_in_the_reference_with_its_type() -> None:
    rows = table_rows(subsection("The drop"))
    documented = {row[0].strip("`"): row[1].strip("`") for row in rows}
    assert documented == {f.name: str(f.type) for f in dataclasses.fields(Drop)}
    assert all(row[3] and row[4] for row in rows), "say whether each field may be logged and sent"


def test_the_reference_lists_exactly_what_to_json_sends() -> None:
    text = prose_of(subsection("The drop"))
    sent = text.split("`drop.to_json(url)`", 1)[1].split("timestamps", 1)[0]
    assert tuple(re.findall(r"`(\w+)`", sent)) == JSON_FIELDS


def core_errors() -> list[type[errors.TeledropError]]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, errors.TeledropError)]


def error_rows() -> list[str]:
    """The errors table as the code makes it, by status then code."""
    return [f"| `{cls.__name__}` | `{cls.__mro__[1].__name__}` | `{cls.code}` | {cls.status} "
            f"| {cls.default_message} |"
            for cls in sorted(core_errors(), key=lambda cls: (cls.status, cls.code))]


def test_every_error_class_is_in_the_reference_with_its_code_and_status() -> None:
    section = subsection("Errors")
    assert "…" not in section and "..." not in section
    documented = [line for line in section.splitlines() if line.startswith("| `")]
    expected = error_rows()
    assert documented == expected, "the table should read:\n" + "\n".join(expected)


def test_the_reserved_words_are_cores() -> None:
    bullet = subsection("Slugs").split("**Reserved words**", 1)[1].split("\n- **", 1)[0]
    assert set(re.findall(r"`([^`]+)`", bullet)) == set(slugs.RESERVED)


def test_the_slug_rules_are_cores() -> None:
    text = prose_of(subsection("Slugs"))
    assert slugs.CUSTOM_SLUG_RULE in text
    assert slugs.GENERATED_SLUG_RULE in text
    assert f"at least {slugs.MIN_GENERATED_BITS} random bits" in text
    assert f"up to {service.SLUG_ATTEMPTS} times" in text
    assert f"up to {commit_chain.GENERATED_SLUG_RETRIES} times" in text
    assert "could not generate an acceptable slug" in text and "could not find a free slug" in text
    for message in ("could not generate an acceptable slug", "could not find a free slug"):
        assert message in (Path(service.__file__).read_text()
                           + Path(commit_chain.__file__).read_text())


def test_where_hooks_run_says_every_worker_and_gc() -> None:
    text = prose_of(subsection("Where hooks run"))
    assert "Event hooks run in every worker and in `teledrop gc`" in text
    assert "safe to run concurrently" in text
    for event in ("teledrop_drop_created", "teledrop_drop_deleted"):
        assert f"`{event}`" in text


def test_a_relative_default_path_is_called_unsafe() -> None:
    assert "**A relative default path is not a safe default.**" in TEXT
    for block in PYTHON:  # and no example here gives one
        for default in re.findall(r'(?:path|root|socket|dir)\w*: str = "([^"]*)"', block.code):
            assert not default or default.startswith("/"), (block.line, default)


def test_the_inspection_and_content_apis_are_the_real_ones() -> None:
    walk = TEXT.split("## Inspecting uploads: a virus scanner", 1)[1].split("\n## ", 1)[0]
    for name in ("update", "finish"):
        assert callable(getattr(Inspector, name))
        assert f"`{name}(" in walk
    for name in ("close()", "resumable = True", "read_staged"):
        assert f"`{name}" in TEXT
    for name in ("open", "chunks"):
        assert callable(getattr(BlobContent, name)) and f"`content.{name}(" in walk
    for name in ("new_digest", "feed_file"):
        assert callable(getattr(inspection, name)) and f"{name}(" in walk
    assert "examples/teledrop_clamav" in walk
