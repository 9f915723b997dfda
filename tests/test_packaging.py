"""Packaging: what an installed iouring carries, and how its extension was compiled.

- ``python -m iouring --version`` prints the version, which lives in one place
  (``iouring.__version__``, read by the build backend and by CMake).
- The wheel carries the C++ headers (``iouring.get_include()``) and the type stubs.
- The extension is built for the baseline x86-64 ISA: no AVX-512 (and no AVX) instructions, so
  it runs on every x86-64 CPU (a wheel built with ``-march=native`` dies with SIGILL elsewhere).
- Every program of ``docs/recipes/`` runs, so the documentation's code stays true.

Building the wheel and the sdist takes minutes: CI does that (.ci/run), not this file.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import iouring
from iouring import _core

REPO = Path(__file__).resolve().parents[1]
# Not resolved: a development tree may link the package's files from elsewhere.
PACKAGE = Path(os.path.abspath(iouring.__file__)).parent


def _installed_distribution() -> importlib.metadata.Distribution | None:
    """The installed distribution that the imported iouring comes from, if any.

    A development tree (PYTHONPATH pointing at a build) imports iouring without the files
    that only an install puts in place, such as the C++ headers.
    """
    try:
        dist = importlib.metadata.distribution("iouring")
    except importlib.metadata.PackageNotFoundError:
        return None
    init = Path(str(dist.locate_file("iouring/__init__.py"))).resolve()
    return dist if init == (PACKAGE / "__init__.py").resolve() else None


@pytest.fixture
def installed() -> importlib.metadata.Distribution:
    dist = _installed_distribution()
    if dist is None:
        pytest.skip(f"iouring is imported from a development tree ({PACKAGE}), not installed")
    return dist


# --------------------------------------------------------------------------------------------
# Version, CLI, files of the package


def test_packaging_version_is_pep440() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", iouring.__version__)


def test_packaging_cli_prints_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "iouring", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"iouring {iouring.__version__}"


def test_packaging_metadata_version_matches(installed: importlib.metadata.Distribution) -> None:
    assert installed.version == iouring.__version__


def test_packaging_version_in_one_place() -> None:
    """The build reads the version from __init__.py: no other file may spell it out."""
    pyproject = REPO / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip("no source tree next to the tests")
    assert re.search(r'^dynamic = \[.*"version".*\]', pyproject.read_text(), re.MULTILINE)
    assert not re.search(r"^version\s*=", pyproject.read_text(), re.MULTILINE)
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert "python/iouring/__init__.py" in cmake
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(iouring.__version__)}\b", changelog, re.MULTILINE), (
        f"CHANGELOG.md has no section for {iouring.__version__}"
    )


def test_packaging_get_include_has_the_headers(installed: importlib.metadata.Distribution) -> None:
    include = Path(iouring.get_include())
    assert (include / "iouring" / "iouring.hpp").is_file()
    source = REPO / "cpp" / "include" / "iouring"
    if source.is_dir():
        expected = sorted(p.name for p in source.glob("*.hpp"))
        assert sorted(p.name for p in (include / "iouring").glob("*.hpp")) == expected


def test_packaging_get_include_compiles(installed: importlib.metadata.Distribution) -> None:
    """A C++ program compiles against the installed headers alone (no Python, no liburing)."""
    compiler = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler on PATH")
    program = (
        "#include <iouring/iouring.hpp>\n"
        "int main() {\n"
        "    iouring::IoUring ring;\n"
        "    iouring::Sqe sqe{};\n"
        "    iouring::prep_nop(sqe, 42);\n"
        "    return sqe.user_data == 42 && !ring.is_open() ? 0 : 1;\n"
        "}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "main.cpp")
        source.write_text(program)
        result = subprocess.run(
            [
                compiler,
                "-std=c++20",
                "-fsyntax-only",
                "-Wall",
                "-Wextra",
                "-Werror",
                f"-I{iouring.get_include()}",
                str(source),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr


# find_package(iouring) against the wheel's layout: the headers in iouring/include and the
# package config in iouring/share/cmake/iouring, both inside the Python package.
_CONSUMER_CMAKE = """cmake_minimum_required(VERSION 3.20)
project(consumer LANGUAGES CXX)
find_package(iouring {version} CONFIG REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE iouring::iouring)
"""
_CONSUMER_MAIN = """#include <iouring/iouring.hpp>
int main() {
    iouring::Sqe sqe{};
    iouring::prep_nop(sqe, 42);
    return sqe.user_data == 42 ? 0 : 1;
}
"""


def _build_consumer(tmp: Path, cmake_dir: Path) -> None:
    """Configures, builds and runs a CMake project that uses find_package(iouring)."""
    src = tmp / "consumer"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(_CONSUMER_CMAKE.format(version=iouring.__version__))
    (src / "main.cpp").write_text(_CONSUMER_MAIN)
    build = tmp / "consumer-build"
    for command in (
        ["cmake", "-S", str(src), "-B", str(build), f"-Diouring_DIR={cmake_dir}"],
        ["cmake", "--build", str(build)],
        [str(build / "consumer")],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, (command, result.stdout, result.stderr)


def _need_cmake() -> None:
    if shutil.which("cmake") is None or not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("cmake or a C++ compiler is missing")


def test_packaging_wheel_layout_find_package(tmp_path: Path) -> None:
    """What a wheel installs (the SKBUILD install rules, without the extension) holds a
    package config that find_package(iouring) uses: the consumer builds and runs."""
    _need_cmake()
    if not (REPO / "CMakeLists.txt").is_file():
        pytest.skip("no source tree")
    build = tmp_path / "wheel-build"
    root = tmp_path / "platlib"  # the wheel's root: site-packages after pip install
    for command in (
        [
            "cmake",
            "-S",
            str(REPO),
            "-B",
            str(build),
            "-DSKBUILD=ON",
            "-DIOURING_BUILD_PYTHON=OFF",
        ],
        ["cmake", "--install", str(build), "--prefix", str(root)],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    cmake_dir = root / "iouring" / "share" / "cmake" / "iouring"
    assert (cmake_dir / "iouringConfig.cmake").is_file()
    assert (cmake_dir / "iouringConfigVersion.cmake").is_file()
    # iouring.get_cmake_dir() names this directory inside the installed package
    assert Path(iouring.get_cmake_dir()).relative_to(PACKAGE) == Path("share/cmake/iouring")
    _build_consumer(tmp_path, cmake_dir)


def test_packaging_installed_find_package(
    installed: importlib.metadata.Distribution, tmp_path: Path
) -> None:
    _need_cmake()
    _build_consumer(tmp_path, Path(iouring.get_cmake_dir()))


def test_packaging_cmake_prefix_entry_point(installed: importlib.metadata.Distribution) -> None:
    points = installed.entry_points.select(group="cmake.prefix")
    assert [p.value for p in points] == ["iouring"]


def test_packaging_typing_files_are_installed() -> None:
    assert (PACKAGE / "py.typed").is_file()
    assert (PACKAGE / "_core.pyi").is_file()


def test_packaging_license_in_metadata(installed: importlib.metadata.Distribution) -> None:
    files = [str(f) for f in installed.files or []]
    assert any(re.search(r"(^|/)LICENSE", f) for f in files), files


# --------------------------------------------------------------------------------------------
# The instructions of the extension

# Registers and syntax that only AVX-512 (EVEX encoding) has: zmm registers, xmm/ymm 16-31,
# opmask registers k0-k7 and masking ({%k1}, {z}), embedded broadcast ({1to16}) and rounding.
_EVEX_OPERAND = re.compile(
    r"%zmm\d+|%[xy]mm(?:1[6-9]|2\d|3[01])\b|%k[0-7]\b|\{%k[0-7]\}|\{z\}|\{1to\d+\}|\{r[nduz]-sae\}"
)
# Mnemonics that exist only in AVX-512 (with any operand size, so also AVX-512VL forms).
_EVEX_MNEMONIC = re.compile(
    r"^(?:k(?:add|and|andn|mov|not|or|ortest|shiftl|shiftr|test|unpck|xnor|xor)[bwdq]?"
    r"|vmovdq[au](?:8|16|32|64)|valign[dq]|vblendm\w+|vbroadcast[if](?:32x[248]|64x[24])"
    r"|vcompress\w+|vexpand\w+|vpcompress\w+|vpexpand\w+|vpermt2\w+|vpermi2\w+"
    r"|vpternlog[dq]|vprol[vdq]*|vpror[vdq]*|vpabsq|vp(?:max|min)[su]q|vpmullq|vpmovm2\w+"
    r"|vpmov[bwdq]2m|vpmov(?:us|s)?(?:qb|qw|qd|db|dw|wb)|vpsraq|vpsravq|vrndscale\w+|vrange\w+"
    r"|vreduce\w+|vfixupimm\w+|vfpclass\w+|vgetexp\w+|vgetmant\w+|vscalef\w+|vrcp14\w+"
    r"|vrsqrt14\w+|vcvt\w*2u\w+|vcvtu\w+|vpconflict[dq]|vplzcnt[dq]|vpopcnt[bwdq]"
    r"|vpdpbusds?|vpdpwssds?|vpshufbitqmb|vpmultishiftqb|vpshl?dv?[wdq]|vpshr?dv?[wdq]"
    r"|vpcmpu?[bwdq]|vptestn?m[bwdq]|vextract[if](?:32x[48]|64x[24])"
    r"|vinsert[if](?:32x[48]|64x[24])|vshuf[if](?:32x4|64x2)|vpscatter\w+|vscatter\w+"
    r"|vgatherpf\w+|vpermb|vpermw|vpsllvw|vpsrlvw|vpsravw|vdbpsadbw|vpmadd52[lh]uq|vexp2p[sd]"
    r"|vrcp28\w+|vrsqrt28\w+|vcvtne2ps2bf16|vcvtneps2bf16|vdpbf16ps)\b"
)


def avx512_instructions(disassembly: str) -> list[str]:
    """The lines of an ``objdump -d --no-show-raw-insn`` listing that need AVX-512."""
    found = []
    for line in disassembly.splitlines():
        address, tab, instruction = line.partition(":\t")
        if not tab or not address.strip():
            continue
        mnemonic = instruction.split(None, 1)[0] if instruction.split() else ""
        if _EVEX_OPERAND.search(instruction) or _EVEX_MNEMONIC.match(mnemonic):
            found.append(line.strip())
    return found


def _objdump() -> str:
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) is not installed")
    return objdump


def _disassemble(objdump: str, path: Path) -> str:
    result = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


x86_64_only = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="the ISA checks are about x86-64 builds"
)


@x86_64_only
def test_packaging_avx512_scanner_finds_avx512() -> None:
    """The scanner is not blind: it flags an assembled AVX-512 instruction and nothing else."""
    objdump = _objdump()
    assembler = shutil.which("as")
    if assembler is None:
        pytest.skip("as (binutils) is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        source, obj = Path(tmp, "t.s"), Path(tmp, "t.o")
        source.write_text(
            ".text\n"
            "vpaddd %zmm1, %zmm2, %zmm3\n"  # AVX-512F
            "vpternlogd $0x96, %ymm1, %ymm2, %ymm3\n"  # AVX-512VL: ymm registers, EVEX only
            "vmovdqu64 (%rdi), %xmm20\n"  # a high xmm register
            "kmovw %k1, %eax\n"
            "vpaddd %ymm1, %ymm2, %ymm3\n"  # AVX2 (VEX): not AVX-512
            "addq %rax, %rbx\n"
        )
        subprocess.run([assembler, "-o", str(obj), str(source)], check=True, timeout=60)
        found = avx512_instructions(_disassemble(objdump, obj))
    assert [line.split("\t", 1)[1].split()[0] for line in found] == [
        "vpaddd",
        "vpternlogd",
        "vmovdqu64",
        "kmovw",
    ]


def _extension() -> Path:
    path = Path(_core.__file__).resolve()
    assert path.suffix == ".so", path
    return path


@x86_64_only
def test_packaging_extension_has_no_avx512() -> None:
    found = avx512_instructions(_disassemble(_objdump(), _extension()))
    assert not found, f"{len(found)} AVX-512 instructions in {_extension()}, e.g. {found[:5]}"


@x86_64_only
def test_packaging_extension_targets_baseline_x86_64() -> None:
    """No ymm register at all: nothing needs AVX either (the baseline is SSE2)."""
    disassembly = _disassemble(_objdump(), _extension())
    found = [line.strip() for line in disassembly.splitlines() if "%ymm" in line]
    assert not found, f"{len(found)} AVX instructions in {_extension()}, e.g. {found[:5]}"


# --------------------------------------------------------------------------------------------
# The documentation's programs

RECIPES = sorted((REPO / "docs" / "recipes").glob("*.py"))


@pytest.mark.skipif(not RECIPES, reason="no docs/recipes next to the tests")
@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_packaging_docs_recipe_runs(recipe: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    package_root = str(PACKAGE.parent)  # the iouring these tests import, wherever it is
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-W", "error", str(recipe)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    if result.returncode != 0 and "PermissionError" in result.stderr:
        pytest.skip(f"io_uring is not available: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("ok"), result.stdout
