"""The repository documents itself: every configuration key is in docs/configuration.md,
and no link in README.md or docs/ leaves the repository."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from urllib.parse import unquote

from pydantic import BaseModel

from bridge.config import Settings

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
SKIPPED_SECTIONS = frozenset({"mapping", "partners"})
"""`mapping`: free-form table overrides, documented per table; `partners`: one section per
partner, whose keys are its kind's (`test_every_partner_kind_is_documented`)."""

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_SECTION = re.compile(r"\[([A-Za-z0-9_.<>]+)\]")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (`X`, `X | None`, `Optional[X]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of a section model; a nested model's keys as `outer.inner`."""
    keys = []
    for name, info in model.model_fields.items():
        nested = _models_in(info.annotation)
        if nested:
            for sub in nested:
                keys.extend(_keys(sub, f"{prefix}{name}."))
        else:
            keys.append(prefix + name)
    return keys


def config_keys() -> dict[str, list[str]]:
    """`section → keys` of `Settings`, recursively; `mapping` left out."""
    sections: dict[str, list[str]] = {}
    for name, info in Settings.model_fields.items():
        if name in SKIPPED_SECTIONS:
            continue
        models = _models_in(info.annotation)
        assert models, f"Settings.{name} is not a section model"
        sections[name] = [key for model in models for key in _keys(model)]
    return sections


def documented_keys(text: str) -> dict[str, set[str]]:
    """`section → keys` documented in configuration.md: a heading naming `[section]`
    opens a section, up to the next heading of the same or a higher level; in it a key
    is documented by a table row whose first cell is the key, or by a heading naming it."""
    found: dict[str, set[str]] = {}
    section: str | None = None
    level = 0
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            depth, title = len(heading.group(1)), heading.group(2)
            named = _SECTION.search(title)
            if named:
                section, level = named.group(1), depth
                found.setdefault(section, set())
                continue
            if section is not None and depth <= level:
                section = None
                continue
            if section is not None:
                found[section].update(re.findall(r"`([A-Za-z0-9_.]+)`", title))
            continue
        if section is not None and line.lstrip().startswith("|"):
            first = line.strip().strip("|").split("|")[0].strip()
            found[section].add(first.strip("`"))
    return found


def test_every_configuration_key_is_documented() -> None:
    """Each `[section] key` of Settings has a row (or heading) under its section."""
    documented = documented_keys(CONFIGURATION.read_text(encoding="utf-8"))
    missing = [
        f"[{section}] {key}"
        for section, keys in config_keys().items()
        for key in keys
        if key not in documented.get(section, set())
    ]
    assert not missing, (
        f"{len(missing)} configuration key(s) not documented in docs/configuration.md:\n  "
        + "\n  ".join(missing)
    )


def test_the_key_walk_sees_every_section() -> None:
    """The walk above is not vacuous: it finds the sections and keys we know of."""
    keys = config_keys()
    assert {"amqp", "store", "hotline12345", "hotline12351", "admin", "bridge"} <= set(keys)
    assert "client_secret" in keys["hotline12345"] and "api_key" in keys["hotline12351"]
    assert "mapping" not in keys


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _link_targets(text: str) -> list[str]:
    text = _CODE_SPAN.sub("", _FENCE.sub("", text))
    return _INLINE_LINK.findall(text) + _REFERENCE_LINK.findall(text)


def test_docs_exist() -> None:
    for name in (
        "README.md",
        "architecture.md",
        "interfaces.md",
        "configuration.md",
        "operations.md",
    ):
        assert (ROOT / "docs" / name).is_file(), f"docs/{name} is missing"


def test_no_link_leaves_the_repository() -> None:
    """Every relative link in README.md and docs/*.md resolves to a file or directory
    inside the repository; none points outside it (absolute paths, `../shared`, …)."""
    bad = []
    for doc in _markdown_files():
        for target in _link_targets(doc.read_text(encoding="utf-8")):
            if _EXTERNAL.match(target):
                continue  # a web address, not a path
            path = unquote(target.split("#", 1)[0].split("?", 1)[0])
            if not path:
                continue  # an anchor in the same document
            where = f"{doc.relative_to(ROOT)}: {target}"
            if path.startswith("/"):
                bad.append(f"{where} (absolute path)")
                continue
            resolved = (doc.parent / path).resolve()
            if not resolved.is_relative_to(ROOT):
                bad.append(f"{where} (outside the repository)")
            elif not resolved.exists():
                bad.append(f"{where} (no such file)")
    assert not bad, "links that do not stay inside the repository:\n  " + "\n  ".join(bad)


def test_no_document_mentions_the_shared_design_outside() -> None:
    """Not even as plain text: whoever clones the repository has no `../shared`."""
    offenders = [
        str(doc.relative_to(ROOT))
        for doc in _markdown_files()
        if "../shared" in doc.read_text(encoding="utf-8")
    ]
    assert not offenders, f"documents pointing at ../shared: {offenders}"


def test_every_partner_kind_is_documented() -> None:
    """The `[partners.<name>]` section and every kind's keys: a kind with the contract's
    own section is documented there, any other under a heading naming `kind = "<kind>"`."""
    from bridge.partners import kinds

    text = CONFIGURATION.read_text(encoding="utf-8")
    documented = documented_keys(text)
    assert "kind" in documented.get("partners.<name>", set())
    missing = []
    for found in kinds().values():
        section = found.legacy_section or f"partners.{found.kind}"
        for key in _keys(found.config_model):
            if key not in documented.get(section, set()):
                missing.append(f"[{section}] {key}")
    assert not missing, "partner kind keys not documented:\n  " + "\n  ".join(missing)
