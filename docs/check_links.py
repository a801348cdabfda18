#!/usr/bin/env python3
"""Checks the relative links of every Markdown file in the repository.

Every `[text](target)` and `[label]: target` in a tracked (or new, not
ignored) `*.md` file whose target has no URL scheme must name a file or
directory of the repository, found from the linking file's own directory,
without leaving the repository; a `#fragment` on a Markdown target (or on
its own) must name a heading of that file. Links inside code (fenced blocks
and `inline spans`) are not links and are skipped.

Prints each broken link as `file:line: target: why` and exits 1, or prints
one summary line and exits 0. Standard library only; needs git.

    python3 docs/check_links.py
"""

import re
import subprocess
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target) or [text](target "title"), image links included; the text
# may hold one level of brackets.
INLINE = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s()]+)(?:\s+[\"'(][^)]*)?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")


def markdown_files():
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.md"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return sorted(ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file())


def prose_lines(path):
    """(line number, text) of every line outside fenced code."""
    fence = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0] * len(opening.group(1))
            continue
        if fence is not None:
            if line.lstrip().startswith(fence):
                fence = None
            continue
        yield number, line


def slug(heading):
    """GitHub's anchor for a heading: lower case, markup and punctuation
    dropped (hyphens and underscores kept), spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    kept = "".join(
        c for c in text.lower()
        if c in " -_" or unicodedata.category(c)[0] in "LN"
    )
    return kept.replace(" ", "-")


def anchors(path, cache={}):
    """Every heading anchor of `path`; a repeated heading gets -1, -2, ..."""
    if path not in cache:
        found, repeats = set(), {}
        for _, line in prose_lines(path):
            match = HEADING.match(line)
            if match:
                base = slug(match.group(1))
                count = repeats.get(base, 0)
                repeats[base] = count + 1
                found.add(base if count == 0 else f"{base}-{count}")
        cache[path] = found
    return cache[path]


def targets(path):
    for number, line in prose_lines(path):
        line = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        for match in INLINE.finditer(line):
            yield number, match.group(1)
        match = REFERENCE.match(line)
        if match:
            yield number, match.group(1)


def problem(source, target, tracked_files, tracked_dirs):
    """Why `target`, linked from `source`, is broken, or None."""
    target = target.strip("<>")
    if SCHEME.match(target) or target.startswith("//"):
        return None  # a URL, not a path in the repository
    path_part, _, fragment = target.partition("#")
    path_part = path_part.split("?", 1)[0]
    if path_part.startswith("/"):
        return "absolute path (write it relative to the linking file)"
    resolved = (source.parent / path_part).resolve() if path_part else source
    if resolved != ROOT and ROOT not in resolved.parents:
        return "leaves the repository"
    if resolved not in tracked_files and resolved not in tracked_dirs:
        return "no such file or directory in the repository"
    if fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
        return f"no heading with anchor #{fragment}"
    return None


def main():
    files = markdown_files()
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    tracked_files = {(ROOT / name).resolve() for name in listed.split("\0") if name}
    tracked_files = {path for path in tracked_files if path.is_file()}
    tracked_dirs = {ROOT}
    for path in tracked_files:
        tracked_dirs.update(p for p in path.parents if ROOT in p.parents)

    broken, checked = [], 0
    for source in files:
        for number, target in targets(source):
            checked += 1
            why = problem(source, target, tracked_files, tracked_dirs)
            if why:
                broken.append(f"{source.relative_to(ROOT)}:{number}: {target}: {why}")
    for line in broken:
        print(line)
    if broken:
        print(f"check_links: {len(broken)} broken of {checked} links in {len(files)} Markdown files")
        return 1
    print(f"check_links: {checked} links in {len(files)} Markdown files, all inside the repository and resolving")
    return 0


if __name__ == "__main__":
    sys.exit(main())
