"""`make interop`: the `llamacpp` provider against a real llama.cpp `llama-server`, built here.

    .venv/bin/python interop/run.py [pytest args...]

1. downloads the source distribution of `llama-cpp-python` from PyPI (it vendors llama.cpp under
   vendor/llama.cpp) and builds only the `llama-server` target with cmake, on the CPU, with no
   network features (no curl, no OpenSSL, no web UI download);
2. writes a tiny random-weight GGUF model (interop/make_tiny_model.py) with the `gguf` package
   vendored in the same tree, installed in a tool environment of its own, not in .venv;
3. starts three servers on 127.0.0.1 (free ports, --offline): one for chat with --jinja (and no
   embeddings, so an embeddings request there is a real 501), one with --embeddings, and one
   with --jinja on a second model whose vocabulary lets a logit_bias force a tool call (see
   make_tiny_model.py --call-token);
4. runs interop/test_llamacpp.py with their URLs in LLAMACPP_INTEROP_URL,
   LLAMACPP_INTEROP_EMBED_URL and LLAMACPP_INTEROP_TOOLS_URL, then stops the servers, whatever
   happened (a failed start included).

Everything is cached under .venv/interop/ (INTEROP_CACHE overrides): the download, the build, the
tool environment and the model, so a second run only starts the servers and runs the checks.
Nothing here is part of `make test`.

INTEROP_LLAMA_CPP_PYTHON_VERSION picks another release (default 0.3.36); give it a cache of its own.
0.3.8 vendors an early-2025 llama.cpp (b4875, 2025-03-12), whose tree keeps the server under
examples/ (built with LLAMA_BUILD_EXAMPLES) and whose server has no --offline; the flags follow
the tree. The summary names the build tested, as the server reports it in GET /props, with the
vendored commit's date: a server built from an sdist reports build number 1 (the sdist's git
history is one commit deep), so the date is what tells an early build from a current one.

    INTEROP_CACHE=.venv/interop-2025 INTEROP_LLAMA_CPP_PYTHON_VERSION=0.3.8 .venv/bin/python interop/run.py
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

LLAMA_CPP_PYTHON = os.environ.get("INTEROP_LLAMA_CPP_PYTHON_VERSION", "0.3.36")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(os.environ.get("INTEROP_CACHE", ROOT / ".venv" / "interop")).resolve()
JOBS = str(max(1, os.cpu_count() or 1))
HEALTH_DEADLINE = float(os.environ.get("INTEROP_HEALTH_DEADLINE", "120"))

N_CTX = 1024  # the chat server's context; the overflow check sends more than this
N_EMBD = 64  # make_tiny_model.N_EMBD

CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",  # portable: the cached binary runs on any x86-64/arm64 machine of this kind
    "-DLLAMA_BUILD_COMMON=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_UI=OFF",  # no npm build of the web UI
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # and no download of a prebuilt one
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",  # deprecated in this tree (ignored), kept for older vendored trees
]


def cmake_flags(tree: Path) -> list[str]:
    """CMAKE_FLAGS for a tree with tools/server; older trees (early 2025 and before) keep the server under
    examples/, configured only with LLAMA_BUILD_EXAMPLES (only the llama-server target is built)."""
    if (tree / "tools" / "server").is_dir() or not (tree / "examples" / "server").is_dir():
        return CMAKE_FLAGS
    return [f for f in CMAKE_FLAGS if f != "-DLLAMA_BUILD_EXAMPLES=OFF"] + ["-DLLAMA_BUILD_EXAMPLES=ON"]


def server_flags(tree: Path) -> list[str]:
    """Flags every server gets; --offline (no model downloads) only where the tree has it."""
    offline = "--offline" in (tree / "common" / "arg.cpp").read_text(errors="replace")
    return (["--offline"] if offline else []) + ["--no-webui", "-t", "2", "-np", "1", "--no-warmup"]


def step(title: str) -> float:
    print(f"\n== interop: {title}", flush=True)
    return time.monotonic()


def done(start: float, what: str) -> None:
    print(f"   {what} ({time.monotonic() - start:.1f} s)", flush=True)


def run(cmd: list[str], **kwargs: object) -> None:
    print("   $ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def fetch_sdist() -> Path:
    """The sdist from PyPI (pip download), once."""
    dl = CACHE / "dl"
    found = sorted(dl.glob(f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"))
    if found:
        return found[0]
    t = step(f"download llama-cpp-python=={LLAMA_CPP_PYTHON} (sdist) from PyPI")
    dl.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
         "-d", str(dl), f"llama-cpp-python=={LLAMA_CPP_PYTHON}"])
    found = sorted(dl.glob(f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"))
    if not found:
        raise SystemExit(f"interop: pip download left no llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz in {dl}")
    done(t, found[0].name)
    return found[0]


def llama_tree(sdist: Path) -> Path:
    """vendor/llama.cpp of the extracted sdist, extracted once (into a temporary folder, then renamed)."""
    top = CACHE / "src" / f"llama_cpp_python-{LLAMA_CPP_PYTHON}"
    tree = top / "vendor" / "llama.cpp"
    if (tree / "CMakeLists.txt").is_file():
        return tree
    t = step(f"extract {sdist.name}")
    (CACHE / "src").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=CACHE / "src"))
    try:
        with tarfile.open(sdist) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python < 3.11.4
                tar.extractall(tmp)  # a PyPI sdist this script downloaded
        if top.exists():
            shutil.rmtree(top)
        (tmp / top.name).rename(top)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not (tree / "CMakeLists.txt").is_file():
        raise SystemExit(f"interop: {sdist.name} has no vendor/llama.cpp")
    done(t, str(tree))
    return tree


def build_server(tree: Path) -> Path:
    """build/bin/llama-server, rebuilt only when the source version or the flags change."""
    build = CACHE / "build"
    binary = build / "bin" / "llama-server"
    stamp = build / "rig-sync-interop.stamp"
    flags = cmake_flags(tree)
    want = json.dumps({"src": str(tree), "flags": flags})
    if binary.is_file() and stamp.is_file() and stamp.read_text() == want:
        return binary
    t = step(f"build llama-server on the CPU (cmake, -j{JOBS}; the first build takes minutes)")
    if not stamp.is_file() or stamp.read_text() != want:
        stamp.unlink(missing_ok=True)
        run(["cmake", "-S", str(tree), "-B", str(build), *flags], stdout=subprocess.DEVNULL)
    run(["cmake", "--build", str(build), "--target", "llama-server", "-j", JOBS])
    if not binary.is_file():
        raise SystemExit(f"interop: the build left no {binary}")
    stamp.write_text(want)
    done(t, str(binary))
    return binary


def tool_python(tree: Path) -> Path:
    """A tool environment with numpy and the vendored gguf-py (kept out of the project's .venv)."""
    venv = CACHE / "venv"
    py = venv / "bin" / "python"
    stamp = venv / "rig-sync-interop.stamp"
    if py.is_file() and stamp.is_file() and stamp.read_text() == str(tree):
        return py
    t = step("tool environment for the model writer (numpy, gguf)")
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(py), "-m", "pip", "install", "--quiet", str(tree / "gguf-py")])
    stamp.write_text(str(tree))
    done(t, str(venv))
    return py


def tiny_model(py: Path, tree: Path, name: str, *flags: str) -> Path:
    """model/NAME.gguf, rewritten when the writer, the chat template or the flags change."""
    writer = HERE / "make_tiny_model.py"
    template = tree / "models" / "templates" / "Qwen-Qwen2.5-7B-Instruct.jinja"
    if not template.is_file():
        raise SystemExit(f"interop: the vendored tree has no chat template {template}")
    model = CACHE / "model" / f"{name}.gguf"
    stamp = model.with_suffix(".stamp")
    digest = hashlib.sha256(writer.read_bytes() + template.read_bytes() + repr(flags).encode()).hexdigest()
    if model.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return model
    t = step(f"write the tiny random-weight GGUF model {model.name}")
    model.parent.mkdir(parents=True, exist_ok=True)
    run([str(py), str(writer), str(model), str(template), *flags])
    stamp.write_text(digest)
    done(t, str(model))
    return model


def server_build(url: str) -> str:
    """The build a running server reports in GET /props (`b<number>-<commit>`), or "unknown"."""
    try:
        with urllib.request.urlopen(url + "/props", timeout=5) as resp:
            info = json.load(resp).get("build_info")
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError, AttributeError):
        return "unknown"
    return info if isinstance(info, str) and info else "unknown"


def commit_date(tree: Path, build: str) -> str:
    """The date (YYYY-MM-DD) of the vendored commit, read from the git metadata the sdist ships, if it
    is the commit the server reports; "" otherwise. That history is one commit deep, so a server
    built from an sdist reports build number 1 whatever its age: the date is what tells its age."""
    commit = build.partition("-")[2]
    if not commit or not (tree / ".git").exists():
        return ""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = str(tree.parent)  # never the repository around the cache
    try:
        out = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%H %cs"],
                             capture_output=True, text=True, env=env, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    full, _, date = out.stdout.strip().partition(" ")
    return date if out.returncode == 0 and full.startswith(commit) else ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, name: str, binary: Path, model: Path, common: list[str], extra: list[str]) -> None:
        self.name = name
        self.port = free_port()
        self.log = CACHE / "logs" / f"llama-server-{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(self.port), *common, *extra]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        print(f"   $ {' '.join(self.cmd)}  > {self.log}", flush=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_healthy(self, deadline: float) -> None:
        """Poll GET /health (200 once the model is loaded; 503 while loading) until the deadline."""
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server ({self.name}) exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama-server ({self.name}) not healthy within {HEALTH_DEADLINE:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def main() -> int:
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below on `kill`
    tree = llama_tree(fetch_sdist())
    binary = build_server(tree)
    py = tool_python(tree)
    model = tiny_model(py, tree, "tiny")
    call_model = tiny_model(py, tree, "tiny-call-token", "--call-token")

    common = server_flags(tree)
    servers = [
        Server("chat", binary, model, common, ["--jinja", "-c", str(N_CTX)]),
        Server("embed", binary, model, common,
               ["--embeddings", "--pooling", "mean", "-c", "512", "-b", "512", "-ub", "512"]),
        Server("tools", binary, call_model, common, ["--jinja", "-c", str(N_CTX)]),
    ]
    code = 1
    build, date = "unknown", ""
    try:
        t = step("start llama-server x3 on 127.0.0.1 (chat with --jinja; embeddings; forced tool calls)")
        for s in servers:
            s.start()
        deadline = time.monotonic() + HEALTH_DEADLINE
        for s in servers:
            s.wait_healthy(deadline)
        done(t, "healthy: " + ", ".join(f"{s.name} {s.url}" for s in servers))
        build = server_build(servers[0].url)
        date = commit_date(tree, build)
        print(f"   llama.cpp build {build}" + (f", commit of {date}" if date else ""), flush=True)

        t = step("pytest interop/test_llamacpp.py")
        env = dict(os.environ)
        env.update({
            "LLAMACPP_INTEROP_URL": servers[0].url + "/v1",
            "LLAMACPP_INTEROP_EMBED_URL": servers[1].url + "/v1",
            "LLAMACPP_INTEROP_TOOLS_URL": servers[2].url + "/v1",
            "LLAMACPP_INTEROP_RUN": "1",  # the checks fail, never skip, when a URL is missing
            "LLAMACPP_INTEROP_N_CTX": str(N_CTX),
            "LLAMACPP_INTEROP_N_EMBD": str(N_EMBD),
            "LLAMACPP_INTEROP_BUILD": build,  # the checks read it from the server too, and use
            "LLAMACPP_INTEROP_BUILD_DATE": date,  # the date only where the two agree
        })
        code = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(HERE / "test_llamacpp.py"), *sys.argv[1:]], env=env, cwd=ROOT).returncode
        done(t, f"pytest exit code {code}")
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"interop: {exc}", file=sys.stderr)
        for s in servers:
            print(f"--- last lines of {s.log}\n{s.tail()}", file=sys.stderr)
    finally:
        for s in servers:
            s.stop()
    tested = f"llama.cpp {build}" + (f" of {date}" if date else "") + f" (llama-cpp-python {LLAMA_CPP_PYTHON} sdist)"
    print(f"\n== interop: {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - started:.1f} s against {tested} "
          f"(servers stopped; logs in {CACHE / 'logs'})", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
