"""Where ``annotate`` reads and writes: paths checked before any work, and the output written so
that a file appears only when the run succeeds, while stdout, a pipe or a device is written to
as records come (never replaced)."""
from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union

from .records import STDIN, write_jsonl

#: Output paths naming one of this process's open descriptors, as shells and /proc give them.
DESCRIPTOR_PATH = re.compile(r"/dev/(?:(stdout)|(stderr)|fd/(\d+))|/proc/(self|\d+)/fd/(\d+)")


def output_descriptor(output: Union[str, os.PathLike]) -> Optional[int]:
    """The open descriptor ``output`` names: 1 for ``-`` and ``/dev/stdout``, N for ``/dev/fd/N``
    or ``/proc/self/fd/N``; None for any other path. Opening such a path would open its file
    anew (truncating a file the shell appends to with ``>>``), so records go to the descriptor."""
    text = str(output)
    if text == STDIN:
        return 1
    match = DESCRIPTOR_PATH.fullmatch(text)
    if match is None:
        return None
    stdout, stderr, fd, pid, proc_fd = match.groups()
    if pid is not None and pid not in ("self", str(os.getpid())):
        return None  # another process's descriptor: a path like any other
    return 1 if stdout else 2 if stderr else int(fd or proc_fd)


def check_paths(source: Union[str, os.PathLike], output: Union[str, os.PathLike]) -> None:
    """Refuse, before any work, an input that is missing or a folder, and an output that is a
    folder or the input itself, stdout redirected to it included (``ValueError``). A pipe, a
    device or ``<(command)`` is an input."""
    if str(source) != STDIN:
        if not os.path.exists(source):
            raise ValueError(f"file not found: {source}")
        if os.path.isdir(source):
            raise ValueError(f"cannot read {source}: it is a directory (give a file)")
    fd = output_descriptor(output)
    if fd is not None:
        try:
            read = os.fstat(0) if str(source) == STDIN else os.stat(source)
            same = stat.S_ISREG(read.st_mode) and os.path.samestat(os.fstat(fd), read)
        except OSError:  # a closed descriptor: reading or writing it reports that
            same = False
        if same:  # `annotate in.txt >> in.txt` would read its own records back for ever (a terminal may be both)
            raise ValueError(f"the output ({'stdout' if str(output) == STDIN else output}) is the input file "
                             f"{'(stdin)' if str(source) == STDIN else source}")
    elif str(output) != STDIN:
        if not str(output):
            raise ValueError("the output path is empty (give a file name, or - for stdout)")
        if os.path.isdir(output):
            raise ValueError(f"cannot write {output}: it is a directory (give a file name)")
        if str(output).endswith(os.sep):
            raise ValueError(f"cannot write {output}: a path ending in {os.sep} names a folder (give a file name)")
        blocking = next((p for p in Path(output).parents if p.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise ValueError(f"cannot write {output}: {blocking} is a file, not a folder")
        if str(source) != STDIN and os.path.exists(output) and os.path.samefile(source, output):
            raise ValueError(f"the output {output} is the input file")


def writes_in_place(output: Union[str, os.PathLike]) -> bool:
    """Whether records go straight to ``output`` (stdout or another open descriptor, a device, a
    pipe) as they come, rather than to a file that appears only when the run succeeds."""
    return output_descriptor(output) is not None or (os.path.exists(output) and not os.path.isfile(output))


def write_replacing(records: Iterable[Dict[str, Any]], output: Path) -> None:
    """Write ``records`` to a temporary file beside ``output``, renamed over it at the end. A file
    replaced keeps its permission bits (its hard links keep the old content)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        write_jsonl(records, tmp)
        if output.exists():
            shutil.copymode(output, tmp)
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_output(records: Iterable[Dict[str, Any]], output: Union[str, os.PathLike], flush_each: bool = False) -> None:
    """``records`` to ``output`` (a path or ``"-"``): through the descriptor it names, at that
    descriptor's offset; straight to stdout, a device or a pipe; else to a new file renamed over
    ``output`` at the end (through a symbolic link, over the file it points at)."""
    fd = output_descriptor(output)
    if fd is not None and fd != 1:
        with os.fdopen(os.dup(fd), "wb") as out:
            write_jsonl(records, out, flush_each=flush_each)
    elif writes_in_place(output):
        write_jsonl(records, STDIN if fd == 1 else output, flush_each=flush_each)
    else:
        output = Path(output)
        write_replacing(records, output.resolve() if output.is_symlink() else output)
