"""Fetch Debian's stock kernel (unpacked, never installed) and resolve module load order.

The host kernel here has no bonding driver and cannot load modules, so the VM
boots the kernel of Debian's ``linux-image-amd64``.  The package is fetched
with ``apt-get download`` and unpacked with ``dpkg -x`` into the repo's
ignored ``.cache/vm/`` directory; a second run reuses it without the network.
"""

from __future__ import annotations

import gzip
import lzma
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

META_PACKAGE = "linux-image-amd64"


class KernelError(RuntimeError):
    """The kernel package could not be resolved, fetched or unpacked."""


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel package: the image and its module tree."""

    package: str
    release: str
    root: Path  # the dpkg -x target directory

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    @property
    def moddir(self) -> Path:
        return self.root / "lib" / "modules" / self.release


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


def resolve_package(meta: str = META_PACKAGE) -> str:
    """Name the versioned image package (e.g. linux-image-6.1.0-56-amd64) the meta package pulls."""
    res = _run(["apt-cache", "depends", meta])
    for line in res.stdout.splitlines():
        m = re.match(r"\s*Depends:\s*(linux-image-\d\S*)", line)
        if m:
            return m.group(1)
    raise KernelError(
        f"apt-cache depends {meta} named no linux-image-* package "
        f"(rc={res.returncode}: {res.stderr.strip()[:200]}); run `apt-get update`"
    )


def _release_of(package: str) -> str:
    return package.removeprefix("linux-image-")


def _usable(k: Kernel) -> bool:
    return k.vmlinuz.is_file() and (k.moddir / "modules.dep").is_file()


def cached_kernels(cache: Path) -> list[Kernel]:
    """Kernels already unpacked in the cache, newest name last."""
    found = []
    base = cache / "kernels"
    if base.is_dir():
        for d in sorted(base.iterdir()):
            k = Kernel(d.name, _release_of(d.name), d)
            if _usable(k):
                found.append(k)
    return found


def _download(package: str, dest: Path) -> Path:
    """apt-get download into dest; refresh the package lists once if the mirror moved on."""
    argv = ["apt-get", "download", "-o", "APT::Sandbox::User=root", package]
    res = _run(argv, cwd=dest)
    if res.returncode != 0:
        upd = _run(["apt-get", "update"])
        if upd.returncode != 0:
            raise KernelError(f"apt-get update failed: {upd.stderr.strip()[:300]}")
        res = _run(argv, cwd=dest)
    debs = sorted(dest.glob(f"{package}_*.deb"))
    if res.returncode != 0 or not debs:
        raise KernelError(f"apt-get download {package} failed: {res.stderr.strip()[:300]}")
    return debs[-1]


def ensure_kernel(cache: Path, log=print) -> Kernel:
    """Return an unpacked kernel, downloading and unpacking it only when not cached."""
    try:
        package = resolve_package()
    except KernelError:
        have = cached_kernels(cache)
        if have:  # offline or no apt lists: any kernel we already have will do
            return have[-1]
        log("no apt lists name a kernel package; running apt-get update")
        upd = _run(["apt-get", "update"])
        if upd.returncode != 0:
            raise KernelError(f"apt-get update failed: {upd.stderr.strip()[:300]}") from None
        package = resolve_package()
    k = Kernel(package, _release_of(package), cache / "kernels" / package)
    if _usable(k):
        return k
    log(f"fetching {package} (apt-get download, dpkg -x; not installed)")
    (cache / "kernels").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="fetch-") as tmp:
        t = Path(tmp)
        deb = _download(package, t)
        unpack = t / "root"
        res = _run(["dpkg", "-x", str(deb), str(unpack)])
        if res.returncode != 0:
            raise KernelError(f"dpkg -x {deb.name} failed: {res.stderr.strip()[:300]}")
        tmpk = Kernel(package, k.release, unpack)
        if not tmpk.vmlinuz.is_file():
            raise KernelError(f"{deb.name} has no boot/vmlinuz-{k.release}")
        res = _run(["depmod", "-b", str(unpack), k.release])
        if res.returncode != 0:
            raise KernelError(f"depmod failed: {res.stderr.strip()[:300]}")
        shutil.rmtree(unpack / "usr" / "share", ignore_errors=True)  # docs only
        if k.root.exists():
            shutil.rmtree(k.root)
        unpack.rename(k.root)  # atomic: a half-unpacked tree is never "cached"
    return k


# --- module dependency order -------------------------------------------------


def modname(path: str) -> str:
    """Module name of a modules.dep path: basename without .ko[.xz|.zst|.gz], '-' as '_'."""
    base = path.rsplit("/", 1)[-1]
    base = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base)
    return base.replace("-", "_")


@dataclass
class ModuleIndex:
    """modules.dep, modules.builtin, modules.softdep and modules.alias of one kernel."""

    moddir: Path
    deps: dict[str, list[str]]  # name -> dependency names
    paths: dict[str, str]  # name -> path relative to moddir
    builtin: set[str]
    softpre: dict[str, list[str]]  # name -> "pre:" soft dependencies (names or aliases)
    aliases: dict[str, list[str]]  # alias -> module names

    @classmethod
    def load(cls, moddir: Path) -> ModuleIndex:
        deps: dict[str, list[str]] = {}
        paths: dict[str, str] = {}
        for line in (moddir / "modules.dep").read_text().splitlines():
            if ":" not in line:
                continue
            head, tail = line.split(":", 1)
            name = modname(head)
            paths[name] = head
            deps[name] = [modname(p) for p in tail.split()]
        builtin = set()
        bfile = moddir / "modules.builtin"
        if bfile.is_file():
            builtin = {modname(p) for p in bfile.read_text().split()}
        softpre: dict[str, list[str]] = {}
        sfile = moddir / "modules.softdep"
        if sfile.is_file():
            for line in sfile.read_text().splitlines():
                words = line.split()
                if len(words) >= 4 and words[0] == "softdep" and words[2] == "pre:":
                    pre = []
                    for w in words[3:]:
                        if w.endswith(":"):
                            break
                        pre.append(w)
                    softpre.setdefault(words[1].replace("-", "_"), []).extend(pre)
        aliases: dict[str, list[str]] = {}
        afile = moddir / "modules.alias"
        if afile.is_file():
            for line in afile.read_text().splitlines():
                words = line.split()
                if len(words) == 3 and words[0] == "alias":
                    aliases.setdefault(words[1], []).append(words[2].replace("-", "_"))
        return cls(moddir, deps, paths, builtin, softpre, aliases)

    def _resolve_name(self, name: str) -> str | None:
        """A module name for a name or alias; prefers *_generic (no CPU feature needed)."""
        n = name.replace("-", "_")
        if n in self.paths or n in self.builtin:
            return n
        cands = self.aliases.get(name, [])
        for c in sorted(cands, key=lambda c: (not c.endswith("_generic"), c)):
            if c in self.paths or c in self.builtin:
                return c
        return None

    def load_order(self, wanted: list[str]) -> tuple[list[str], list[str]]:
        """Loadable modules for `wanted` in dependency order, and the names this kernel lacks."""
        order: list[str] = []
        seen: set[str] = set()
        missing: list[str] = []

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            if name in self.builtin:
                return
            for pre in self.softpre.get(name, []):
                r = self._resolve_name(pre)
                if r:
                    visit(r)
            for d in self.deps.get(name, []):
                visit(d)
            order.append(name)

        for w in wanted:
            r = self._resolve_name(w)
            if r is None:
                missing.append(w)
            else:
                visit(r)
        return order, missing

    def module_bytes(self, name: str) -> bytes:
        """The module's ELF, decompressed: busybox insmod is not relied on for .xz/.zst/.gz."""
        rel = self.paths[name]
        path = self.moddir / rel
        data = path.read_bytes()
        if rel.endswith(".xz"):
            return lzma.decompress(data)
        if rel.endswith(".gz"):
            return gzip.decompress(data)
        if rel.endswith(".zst"):
            res = subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=False)
            if res.returncode != 0:
                raise KernelError(f"zstd -dc {rel} failed (is the zstd package installed?)")
            return res.stdout
        return data
