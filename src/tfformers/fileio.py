"""Atomic writes of whole folders: a save either completes or leaves the previous content in place."""

import contextlib
import os
import shutil
import tempfile


def link_or_copy(source, destination):
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


@contextlib.contextmanager
def atomic_directory(target, replaced=lambda name: False):
    """Yields a temporary folder next to `target`; when the block succeeds it becomes `target`.

    Entries already in `target` that the block did not write, and for which `replaced(name)` is false,
    are carried over (hard-linked, so this is cheap). On an exception the temporary folder is removed and
    `target` is untouched. The swap is two renames: an interruption between them leaves `target` absent
    and the old content in a `.<name>.old-*` sibling, never a mix of old and new files.
    """
    target = os.path.abspath(target)
    if os.path.exists(target) and not os.path.isdir(target):
        raise NotADirectoryError(f"{target} exists and is not a folder; choose another save directory.")
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
    try:
        yield staging
        if os.path.isdir(target):
            written = set(os.listdir(staging))
            for entry in os.listdir(target):
                if entry in written or replaced(entry):
                    continue
                source, destination = os.path.join(target, entry), os.path.join(staging, entry)
                if os.path.isdir(source) and not os.path.islink(source):
                    shutil.copytree(source, destination, copy_function=link_or_copy, symlinks=True)
                else:
                    link_or_copy(source, destination)
            retired = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
            os.rename(target, os.path.join(retired, name))
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
