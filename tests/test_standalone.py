"""The repository stands alone: nothing tracked reads or links outside the checkout, the docs'
links resolve inside it, and the VVC encoder builds from the source shipped in third_party/.

.ci/run adds the end-to-end half: the whole suite runs from a clone with nothing beside it."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tosc.source_coding.classic import vvc

REPO = Path(__file__).resolve().parents[1]
VVENC = REPO / "third_party" / "vvenc"
TARBALL = VVENC / "vvenc-1.9.1.tar.gz"

# A path into the folder beside the checkout that held the project's vendored files and notes while
# it was written; a clone does not have it. Built in pieces so that this file does not match itself.
OUTSIDE = re.compile(r"\.\./" + "shared" + r"\b|/work/" + "shared")
# The names those notes had; the project's own pages are docs/theory.md, docs/channel.md, docs/interfaces.md.
OLD_DOC_NAMES = re.compile(r"\b(" + "|".join(["THEORY", "CHANNEL", "INTERFACES", "PAPER", "STYLE", "VVC"]) + r")\.md\b")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _tracked_text_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are not known")
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = []
    for name in names.decode().split("\0"):
        path = REPO / name
        if not name or not path.is_file() or path.suffix in {".pt", ".png", ".gz", ".npz"}:
            continue
        head = path.read_bytes()[:8192]
        if b"\0" not in head:
            files.append(path)
    return files


def test_no_tracked_file_reaches_outside_the_repository():
    offenders = []
    for path in _tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line) or OLD_DOC_NAMES.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
    assert not offenders, "paths or document names from outside the repository:\n" + "\n".join(offenders)


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(markdown: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in markdown.read_text().splitlines() if line.startswith("#")}


def test_markdown_links_resolve_inside_the_repository():
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *sorted((REPO / "third_party").rglob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if REPO not in linked.parents and linked != REPO:
                broken.append(f"{page.relative_to(REPO)}: {target} leaves the repository")
            elif not linked.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} does not exist")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.relative_to(REPO)}: {target} has no heading #{anchor}")
    assert not broken, "\n".join(broken)


def test_vvenc_source_is_shipped_with_its_licence_and_checksum():
    recorded = (VVENC / "vvenc-1.9.1.tar.gz.sha256").read_text().split()
    assert recorded[1] == TARBALL.name
    assert hashlib.sha256(TARBALL.read_bytes()).hexdigest() == recorded[0] == vvc.VVENC_SHA256
    assert TARBALL.stat().st_size < 4 * 2**20  # a source release, not a build tree or binaries
    assert "Clear BSD License" in (VVENC / "LICENSE.txt").read_text()


def test_build_script_finds_and_verifies_the_shipped_source_from_a_lone_copy(tmp_path):
    """A copy of scripts/ and third_party/ alone, with cmake hidden: the script must get past
    finding and checking the tarball and stop only at the missing build tool."""
    lone = tmp_path / "clone"
    (lone / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "build_vvenc.sh", lone / "scripts")
    shutil.copytree(VVENC, lone / "third_party" / "vvenc")
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "sha256sum", "cut", "dirname", "nproc"):
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    env = {"PATH": str(tools), "HOME": str(tmp_path), "TOSC_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([str(tools / "bash"), str(lone / "scripts" / "build_vvenc.sh")], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "cmake is needed" in done.stderr, done.stderr
    assert not (tmp_path / "cache" / f"vvenc-{vvc.VVENC_SHA256[:16]}").exists()

