"""Jars from Maven Central, resolved once into ``SCM_JARS_CACHE`` by a pom next to this file."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from scm.errors import ScmError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def maven_copy(pom: str, properties: dict[str, str], output: Path, what: str) -> None:
    """Copy the runtime dependencies of ``pom`` (next to this file) into ``output``."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ScmError("Maven (mvn) was not found: install it (apt-get install maven)")
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        shutil.copy(Path(__file__).with_name(pom), Path(work) / "pom.xml")
        result = subprocess.run(
            [
                mvn, "-q", "-B", "-Dstyle.color=never", "dependency:copy-dependencies",
                "-DincludeScope=runtime", f"-DoutputDirectory={output}",
                *(f"-D{name}={value}" for name, value in properties.items()),
            ],
            cwd=work, capture_output=True, text=True, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        printed = _ANSI.sub("", result.stdout)
        errors = [line.strip() for line in printed.splitlines() if "ERROR" in line]
        reason = errors[0] if errors else result.stderr.strip()[-300:] or "no output"
        reason = reason.removeprefix("[ERROR] ").removesuffix(" -> [Help 1]")
        raise ScmError(f"could not resolve {what} from Maven Central: {reason}")


def maven_jar(pom: str, properties: dict[str, str], jar: Path, what: str) -> Path:
    """``jar``, which ``pom`` resolves into its folder, copied from Maven Central once (a
    ``.complete`` marker records a finished copy)."""
    marker = jar.parent / ".complete"
    if marker.exists() and jar.is_file():
        return jar
    maven_copy(pom, properties, jar.parent, what)
    if not jar.is_file():
        raise ScmError(f"Maven resolved {what} but {jar} is missing")
    marker.touch()
    return jar
